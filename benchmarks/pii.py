"""`tuneline bench pii`: recall per PII kind on a seeded set, precision on banking77, scrub rows/s.

Recall counts a seeded value as found only when the scrubbed sentence is exactly the sentence with
that value replaced by its kind's placeholder (right kind, nothing left of it, nothing else touched);
"leaked" counts sentences where the value itself is still there. Near misses (an IBAN, card or
Aadhaar number with its last digit changed) and hand-written hard negatives show what a failed
checksum leaves. Precision is over banking77's clean texts (train and test, no PII in them):
1 - (texts changed by the scrubber) / texts, so every false scrub counts. Throughput is rows/s of
`scrub` on banking77's train texts (most rows carry no digit, @ or name cue and take the fast path)
and on the seeded sentences (every row runs the validators), the best of `reps` passes; `--baseline`
times another pii.py (such as the previous version) on the same texts in the same run.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from benchmarks.pii_seeded import Sample, corpus, hard_negatives, near_misses, uncued_names
from benchmarks.report import write_result
from services.kernel.pii import KINDS, scrub

console = Console()
BANKING77 = Path("datasets/banking77")


Scrub = Callable[[str], object]  # this module's scrub, or a baseline's


def banking77_texts(split: str) -> list[str]:
    """The `text` column of one banking77 split."""
    with open(BANKING77 / f"{split}.csv", newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def recall(samples: list[Sample]) -> dict[str, dict[str, object]]:
    """Per kind (and per written form): seeded values, found exactly as their placeholder, leaked."""
    found: Counter[tuple[str, str]] = Counter()
    seen: Counter[tuple[str, str]] = Counter()
    leaked: Counter[tuple[str, str]] = Counter()
    for s in samples:
        out = scrub(s.text)
        seen[s.kind, s.form] += 1
        found[s.kind, s.form] += out.text == s.expected and out.counts == {s.kind: 1}
        leaked[s.kind, s.form] += s.value in out.text
    result: dict[str, dict[str, object]] = {}
    for kind in dict.fromkeys(k for k, _ in seen):
        forms = [f for k, f in seen if k == kind]
        total, hits = sum(seen[kind, f] for f in forms), sum(found[kind, f] for f in forms)
        result[kind] = {"seeded": total, "found": hits, "recall": hits / total,
                        "leaked": sum(leaked[kind, f] for f in forms),
                        "by_form": {f: found[kind, f] / seen[kind, f] for f in forms}}
    return result


def precision(texts: list[str]) -> dict[str, object]:
    """False scrubs on texts known to hold no PII."""
    changed = [(t, scrub(t)) for t in texts]
    false = [(t, s) for t, s in changed if s.text != t]
    kinds = Counter(k for _, s in false for k in s.counts)
    return {"texts": len(texts), "false_scrubs": len(false), "precision": 1 - len(false) / len(texts),
            "by_kind": dict(kinds), "examples": [s.text for _, s in false[:10]]}


def rows_per_s(fn: Scrub, texts: list[str], reps: int) -> dict[str, float]:
    """The best of `reps` passes over the texts, in rows per wall second and per CPU second."""
    wall, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        for t in texts:
            fn(t)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    # Best, not median: the machine is shared, and interference only ever makes a pass slower.
    return {"rows_per_s": len(texts) / min(wall), "rows_per_cpu_s": len(texts) / max(min(cpu), 1e-9)}


def load_scrub(path: Path) -> Scrub:
    """`scrub` from another pii.py file, loaded under a private module name."""
    spec = importlib.util.spec_from_file_location("_pii_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    fn: Scrub = module.scrub
    return fn


def run(*, out: Path | None, n: int, reps: int, baseline: Path | None) -> None:
    """Recall per kind, precision on banking77, throughput; print them and write the result JSON."""
    seeded = corpus(n)
    kinds = recall(seeded)
    uncued = recall(uncued_names(n))["name"]
    negatives = precision(hard_negatives())
    misses = {kind: precision([s.text for s in near_misses(n) if s.kind == kind]) for kind in ("iban", "card", "aadhaar")}
    clean = precision(banking77_texts("train") + banking77_texts("test"))
    train, sentences = banking77_texts("train"), [s.text for s in seeded]
    speed = {"banking77_train": rows_per_s(scrub, train, reps), "seeded": rows_per_s(scrub, sentences, reps)}
    if baseline is not None:
        before = load_scrub(baseline)
        speed["baseline_banking77_train"] = rows_per_s(before, train, reps)
        speed["baseline_seeded"] = rows_per_s(before, sentences, reps)
    result: dict[str, object] = {"n_per_kind": n, "kinds": kinds, "names_without_cue": uncued,
                                 "hard_negatives": negatives, "near_misses": misses, "banking77_clean": clean, "throughput": speed,
                                 "placeholders_checked": list(KINDS), "baseline": str(baseline) if baseline else None}
    path = write_result("pii", result, out)
    _print(kinds, uncued, negatives, misses, clean, speed)
    console.print(f"wrote {path}")


def _print(kinds: dict[str, dict[str, object]], uncued: dict[str, object], negatives: dict[str, object],
           misses: dict[str, dict[str, object]], clean: dict[str, object], speed: dict[str, dict[str, float]]) -> None:
    for kind, r in kinds.items():
        console.print(f"{kind:8} recall {r['recall']:.4f} ({r['found']}/{r['seeded']}, leaked {r['leaked']})  {r['by_form']}")
    console.print(f"names with no cue (not a detected form): recall {uncued['recall']:.4f}")
    console.print(f"hard negatives: {negatives['false_scrubs']} of {negatives['texts']} changed")
    for kind, m in misses.items():
        console.print(f"{kind} with a broken check digit: {m['false_scrubs']} of {m['texts']} changed {m['by_kind']}")
    console.print(f"banking77 clean texts: precision {clean['precision']:.5f} "
                  f"({clean['false_scrubs']} false scrubs in {clean['texts']} texts) {clean['by_kind']}")
    for arm, s in speed.items():
        console.print(f"{arm}: {s['rows_per_s']:.0f} rows/s, {s['rows_per_cpu_s']:.0f} rows/CPU-s")
