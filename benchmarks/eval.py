"""`tuneline bench eval`: evaluation rows/s on banking77's eval split, against one plain scoring pass.

Arms, interleaved A B A B ... after one warm-up of each, threads fixed for both:
  A (baseline) one batched scoring pass over the split: the least any evaluation must do;
  B (evaluator) the whole evaluation: scoring, metrics, calibration, 4 perturbations of a seeded
    500-row sample, 200 timed batch-1 requests, policy, and both reports rendered.
Rows/s of B is the headline; B/A wall time says what the gate's extra measurements cost. The matmul
peak is measured in the same run so the scoring pass's FLOP/s can be read as a fraction of it
(MiniLM-L6: ~21.5 MFLOP per real token, BENCHMARKS.md).

The eval split is datasets/banking77/test.csv (the split the ingest service registers depends on
the goal's eval_fraction; test.csv is the fixed public one). Without --adapter, the adapter is an
untrained LoRA with a seeded head: throughput does not depend on the weights' values.
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from benchmarks.report import spread, write_result

if TYPE_CHECKING:
    from services.kernel.modeling import LoadedClassifier

console = Console()
SPLIT = Path("datasets/banking77/test.csv")
BASE = "bundled:all-MiniLM-L6-v2"
FLOP_PER_TOKEN = 21.5e6


def _split(rows: int) -> tuple[list[str], list[str]]:
    with open(SPLIT, newline="") as f:
        data = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    data = data[:rows] if rows else data
    return [t for t, _ in data], [lab for _, lab in data]


def _untrained_adapter(labels: list[str], out: Path) -> Path:
    from services.kernel.goal import ApproachSpec
    from services.kernel.modeling import AdapterMeta, build_classifier, save_adapter

    model, _ = build_classifier(BASE, labels, ApproachSpec(), seed=17)
    save_adapter(model, labels, AdapterMeta("lora", BASE, 64), out)
    return out


def matmul_peak_gflops(n: int = 1024, reps: int = 20) -> float:
    """fp32 matmul GFLOP/s on the threads set for the run (best of reps)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def _arm_scoring(scorer: LoadedClassifier, texts: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    pred = scorer.predict(texts, batch_size=64)
    return time.perf_counter() - start, int(pred.token_counts.sum())


def _arm_evaluation(scorer: LoadedClassifier, texts: list[str], labels: list[str]) -> tuple[float, float, bool]:
    from services.evaluator.adapters import report_html
    from services.evaluator.domain.report import Identity, report_json
    from services.evaluator.evaluation import EvalConfig, EvalData, evaluate
    from services.kernel.goal import load_goal

    goal = load_goal("goals/banking77.yaml")
    d = "sha256:" + "0" * 64
    ident = Identity("bench", "bench", goal.name, goal.version, "banking77", d, BASE, "lora", d, d, "")
    start = time.perf_counter()
    report, _ = evaluate(ident, goal, EvalData(tuple(texts), tuple(labels), None), scorer, None, EvalConfig())
    report_json(report)
    report_html.render(report)
    elapsed = time.perf_counter() - start
    assert report.findings.latency is not None  # the default EvalConfig always times batch-1 requests
    return elapsed, report.findings.latency.p95_ms, report.decision.passed


def run(*, out: Path | None, reps: int, threads: int, rows: int, adapter: Path | None) -> None:
    """Evaluation rows/s on banking77's eval split, and its cost relative to one scoring pass."""
    import torch

    from services.evaluator.adapters.model import load_scorer
    from services.kernel.modeling import adapter_digest

    torch.set_num_threads(threads)
    texts, labels = _split(rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = adapter or _untrained_adapter(sorted(set(labels)), Path(tmp) / "adapter")
        scorer = load_scorer(BASE, folder, adapter_digest(folder))
        peak = matmul_peak_gflops()
        _arm_scoring(scorer, texts[:256])  # warm-up
        a: list[float] = []
        b: list[float] = []
        p95: list[float] = []
        tokens, passed = 0, False
        for i in range(reps):
            console.print(f"rep {i + 1}/{reps}: scoring pass, then the whole evaluation")
            secs, tokens = _arm_scoring(scorer, texts)
            a.append(secs)
            secs, lat, passed = _arm_evaluation(scorer, texts, labels)
            b.append(secs)
            p95.append(lat)
    n = len(texts)
    scoring_gflops = statistics.median(tokens * FLOP_PER_TOKEN / s / 1e9 for s in a)
    scoring_rows = spread([n / s for s in a])
    evaluation_rows = spread([n / s for s in b])
    over_wall = spread([sb / sa for sa, sb in zip(a, b, strict=True)])
    fraction_of_peak = scoring_gflops / peak
    result: dict[str, object] = {
        "split": str(SPLIT), "rows": n, "threads": threads, "reps": reps, "adapter": str(adapter or "untrained"),
        "matmul_peak_gflops": peak,
        "scoring_rows_per_s": scoring_rows,
        "evaluation_rows_per_s": evaluation_rows,
        "evaluation_over_scoring_wall": over_wall,
        "scoring_gflops": scoring_gflops, "scoring_fraction_of_peak": fraction_of_peak,
        "latency_p95_ms_batch1": spread(p95), "gate_passed_last": passed,
    }
    path = write_result("eval", result, out)
    console.print(f"evaluation {evaluation_rows['median']:.1f} rows/s "
                  f"(scoring pass {scoring_rows['median']:.1f} rows/s; "
                  f"evaluation/scoring wall {over_wall['median']:.2f}x); "
                  f"matmul peak {peak:.0f} GFLOP/s, scoring at {fraction_of_peak:.0%} of it -> {path}")
