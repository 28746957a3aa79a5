"""`tuneline bench train`: T1-T4 of BENCHMARKS.md on banking77 rows and the bundled model.

T1   Ray Train (2 workers) vs plain torch DDP (gloo, 2 processes) running the same loop: samples/s over
     the steps (steady state), and T1b, Ray's fixed cost (fit() wall minus the summed step time).
T2   LoRA training FLOP/s / fp32 matmul peak measured in this run; T2b real / padded tokens.
T3   LoRA vs full fine-tuning: step time and training-state memory (trainable params, grads, AdamW state).
T4   our loop vs Hugging Face Trainer + PEFT on the same rows, model, LoRA config, lr, batch and epochs.
The quick profile (CI) is small and catches gross regressions only; `--profile full` is the real number.
FLOP counts: a Linear of W weights costs 2W FLOP per token forward; LoRA training adds the backward
pass for activations (another 2W), full fine-tuning also the weight gradients (2W more): 4W and 6W.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal, TypedDict

import pandas as pd
import torch
from rich.console import Console

from benchmarks.report import spread, write_result
from services.kernel.goal import ApproachSpec
from services.kernel.settings import REPO_ROOT
from services.trainer.adapters.training_loop import OUTCOME_FILE, CurvePoint, LoopConfig, train

console = Console()
BASE = "bundled:all-MiniLM-L6-v2"


class Profile(TypedDict):
    """Rows and repetitions of one profile."""

    rows: int
    max_length: int
    reps: int
    t4_rows: int


class Outcome(TypedDict, total=False):
    """A run's outcome.json (training_loop._finish) plus its wall time; a Ray run carries only some keys."""

    status: str
    reason: str
    curve: list[CurvePoint]
    steps: int
    stats: dict[str, float]
    metrics: dict[str, float]
    wall: float


PROFILES: dict[str, Profile] = {"quick": {"rows": 256, "max_length": 32, "reps": 2, "t4_rows": 256},
                                "full": {"rows": 2000, "max_length": 64, "reps": 5, "t4_rows": 2000}}


class _Session:
    """A worker session without Ray: rank/world from torch.distributed, checkpoints kept locally."""

    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        self.rank, self.world_size, self.device = rank, world_size, torch.device("cpu")

    def latest_checkpoint(self) -> Path | None:
        return None

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()  # Ray's report is a barrier too


def _config(rows: int, max_length: int, method: Literal["lora", "full"] = "lora", threads: int = 1) -> LoopConfig:
    # A seeded sample: the CSV is grouped by label, so its head would hold a handful of intents.
    df = pd.read_csv(REPO_ROOT / "datasets" / "banking77" / "train.csv").sample(rows + 200, random_state=17)
    labels = sorted(df.label.unique())
    index = {label: i for i, label in enumerate(labels)}
    train_df, held = df.iloc[:rows], df.iloc[rows:]
    return LoopConfig(base_model=BASE, labels=labels, texts=train_df.text.tolist(), targets=[index[x] for x in train_df.label],
                      eval_texts=held.text.tolist(), eval_targets=[index[x] for x in held.label],
                      approach=ApproachSpec(method=method), epochs=1.0, learning_rate=2e-3 if method == "lora" else 5e-5,
                      batch_size=32, max_length=max_length, seed=17, warmup_fraction=0.06, weight_decay=0.01,
                      max_grad_norm=1.0, checkpoint_every=10**9, explode_grad_norm=1e6, threads=threads, log_every=10)


def _local_run(cfg: LoopConfig) -> Outcome:
    with tempfile.TemporaryDirectory() as work:
        began = time.perf_counter()
        train(cfg, _Session(), Path(work))
        outcome: Outcome = json.loads((Path(work) / "final" / OUTCOME_FILE).read_text())
        outcome["wall"] = time.perf_counter() - began
        return outcome


def matmul_peak(threads: int, n: int = 1024, reps: int = 10) -> float:
    """fp32 matmul FLOP/s with `threads` torch threads (best of reps)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(reps):
        began = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - began)
    return 2 * n**3 / best


def _matmul_weights() -> int:
    from services.kernel.modeling import load_base_encoder

    encoder = load_base_encoder(BASE)
    return sum(m.weight.numel() for m in encoder.modules() if isinstance(m, torch.nn.Linear))


def _ddp_worker(rank: int, cfg: LoopConfig, port: int, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    with tempfile.TemporaryDirectory() as work:
        train(cfg, _Session(rank, 2), Path(work))
        if rank == 0:
            Path(out).write_text((Path(work) / "final" / OUTCOME_FILE).read_text())
    torch.distributed.destroy_process_group()


def ddp_run(cfg: LoopConfig) -> Outcome:
    """The same loop under plain torch DDP: 2 spawned processes, gloo."""
    from torch.multiprocessing.spawn import spawn

    with tempfile.TemporaryDirectory() as work:
        out = str(Path(work) / "outcome.json")
        began = time.perf_counter()
        # torch's spawn is unannotated.
        spawn(_ddp_worker, args=(cfg, 29500 + os.getpid() % 1000, out), nprocs=2, join=True)  # type: ignore[no-untyped-call]
        outcome: Outcome = json.loads(Path(out).read_text())
        outcome["wall"] = time.perf_counter() - began
        return outcome


def ray_run(cfg: LoopConfig) -> Outcome:
    """The same loop under Ray Train: TorchTrainer with 2 workers."""
    from services.trainer.adapters import ray_training

    ray_training.ensure_ray(ray_training.RayOptions(num_cpus=2))
    with tempfile.TemporaryDirectory() as work:
        began = time.perf_counter()
        out = ray_training.fit(cfg, f"bench-{time.time_ns()}", Path(work), 2, 0, Path(work) / "adapter")
        wall = time.perf_counter() - began
    return {"stats": out.stats, "metrics": out.metrics, "wall": wall, "status": out.status}


def _samples_per_s(outcome: Outcome, world: int) -> float:
    return outcome["stats"]["samples"] * world / outcome["stats"]["step_seconds"]


def t1(cfg: LoopConfig, reps: int) -> dict[str, dict[str, float]]:
    """Ray Train vs plain DDP, arms interleaved."""
    ray_rates: list[float] = []
    ddp_rates: list[float] = []
    fixed: list[float] = []
    for _ in range(reps):
        r, d = ray_run(cfg), ddp_run(cfg)
        ray_rates.append(_samples_per_s(r, 2))
        ddp_rates.append(_samples_per_s(d, 2))
        fixed.append(r["wall"] - r["stats"]["step_seconds"])
    ratios = [a / b for a, b in zip(ray_rates, ddp_rates, strict=True)]
    return {"ray_samples_per_s": spread(ray_rates), "ddp_samples_per_s": spread(ddp_rates), "ratio": spread(ratios),
            "T1b_ray_fixed_cost_s": spread(fixed)}


def t2_t3(rows: int, max_length: int, reps: int, weights: int) -> dict[str, object]:
    """LoRA and full fine-tuning in one process (2 threads), interleaved, against the matmul peak."""
    lora_cfg, full_cfg = _config(rows, max_length, "lora", 2), _config(rows, max_length, "full", 2)
    lora: list[Outcome] = []
    full: list[Outcome] = []
    peaks: list[float] = []
    for _ in range(reps):
        peaks.append(matmul_peak(2))
        lora.append(_local_run(lora_cfg))
        full.append(_local_run(full_cfg))
    peak = statistics.median(peaks)
    stats = lora[-1]["stats"]
    lora_flops = [4 * weights * o["stats"]["padded_tokens"] / o["stats"]["step_seconds"] for o in lora]
    step_lora = [o["stats"]["step_seconds"] / o["steps"] for o in lora]
    step_full = [o["stats"]["step_seconds"] / o["steps"] for o in full]
    return {
        "matmul_peak_gflops": peak / 1e9,
        "T2_lora_flops_fraction_of_peak": spread([f / peak for f in lora_flops]),
        "T2b_real_over_padded_tokens": stats["real_tokens"] / stats["padded_tokens"],
        "T3_lora_over_full_step_time": spread([a / b for a, b in zip(step_lora, step_full, strict=True)]),
        "T3_training_state_bytes": _state_bytes(lora_cfg, full_cfg),
        "lora_eval_accuracy": lora[-1]["metrics"].get("eval_accuracy"),
        "full_eval_accuracy": full[-1]["metrics"].get("eval_accuracy"),
    }


def _state_bytes(lora_cfg: LoopConfig, full_cfg: LoopConfig) -> dict[str, float]:
    """Trainable parameters + their gradients + AdamW's two moments, in bytes, for both methods."""
    from services.kernel.modeling import build_classifier

    sizes: dict[str, float] = {}
    for name, cfg in (("lora", lora_cfg), ("full", full_cfg)):
        model, _ = build_classifier(BASE, cfg.labels, cfg.approach, cfg.seed)
        trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        sizes[name] = 4 * trainable
    sizes["ratio"] = sizes["lora"] / sizes["full"]
    return sizes


def t4(rows: int, max_length: int) -> dict[str, float | None]:
    """Our loop vs HF Trainer + PEFT on the same rows, model, LoRA config, lr, batch, epochs and threads."""
    cfg = _config(rows, max_length, "lora", 2)
    ours = _local_run(cfg)
    theirs = hf_trainer_run(cfg)
    ours_rate = ours["stats"]["samples"] / ours["stats"]["step_seconds"]  # training steps only, like train_runtime
    return {"ours_samples_per_s": ours_rate, "hf_samples_per_s": theirs["samples_per_s"],
            "ratio": ours_rate / theirs["samples_per_s"], "ours_accuracy": ours["metrics"].get("eval_accuracy"),
            "hf_accuracy": theirs["accuracy"], "ours_real_over_padded": ours["stats"]["real_tokens"] / ours["stats"]["padded_tokens"]}


class _WithLoss(torch.nn.Module):
    """Our classifier with the loss computed inside forward, as HF Trainer expects."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.model(input_ids, attention_mask)
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def hf_trainer_run(cfg: LoopConfig) -> dict[str, float]:
    """HF Trainer + PEFT LoRA with dynamic padding (DataCollatorWithPadding), default random sampler."""
    import transformers.trainer as hf_trainer
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from services.kernel.modeling import build_classifier

    # The repo's datasets/ folder (run from the repo root) looks like the HF `datasets` package to
    # transformers' availability check, which is not installed: tell the Trainer it is absent.
    # transformers.trainer imports the check without re-exporting it; it is patched where Trainer looks it up.
    hf_trainer.is_datasets_available = lambda: False  # type: ignore[attr-defined]

    torch.set_num_threads(cfg.threads)
    model, tok = build_classifier(cfg.base_model, cfg.labels, cfg.approach, cfg.seed)
    enc = tok(cfg.texts, truncation=True, max_length=cfg.max_length)
    rows = [{"input_ids": i, "attention_mask": m, "labels": y}
            for i, m, y in zip(enc["input_ids"], enc["attention_mask"], cfg.targets, strict=True)]
    with tempfile.TemporaryDirectory() as work:
        args = TrainingArguments(output_dir=work, per_device_train_batch_size=cfg.batch_size, num_train_epochs=cfg.epochs,
                                 learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_fraction,
                                 max_grad_norm=cfg.max_grad_norm, seed=cfg.seed, report_to=[], save_strategy="no",
                                 logging_strategy="no", use_cpu=True, disable_tqdm=True, dataloader_pin_memory=False)
        trainer = Trainer(model=_WithLoss(model), args=args, train_dataset=rows, data_collator=DataCollatorWithPadding(tok))
        metrics = trainer.train().metrics
    model.eval()
    with torch.inference_mode():
        held = tok(cfg.eval_texts, padding=True, truncation=True, max_length=cfg.max_length, return_tensors="pt")
        predicted = model(held["input_ids"], held["attention_mask"]).argmax(-1)
    accuracy = float((predicted == torch.tensor(cfg.eval_targets)).float().mean())
    return {"samples_per_s": metrics["train_samples_per_second"], "accuracy": accuracy, "wall": metrics["train_runtime"]}


def run_bench(profile: str = "quick", out: str = "") -> dict[str, object]:
    """Run T1-T4 with a profile and write one JSON result."""
    p = PROFILES[profile]
    torch.manual_seed(0)
    weights = _matmul_weights()
    result: dict[str, object] = {"profile": profile, "config": p, "matmul_weights": weights,
                                 "T2_T3": t2_t3(p["rows"], p["max_length"], p["reps"], weights),
                                 "T4": t4(p["t4_rows"], p["max_length"]),
                                 "T1": t1(_config(p["rows"], p["max_length"]), max(1, p["reps"] - 1))}
    path = write_result("train", result, Path(out) if out else None)
    console.print_json(json.dumps(result))
    console.print(f"-> {path}")
    return result
