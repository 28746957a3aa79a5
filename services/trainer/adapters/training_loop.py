"""The training loop, the same under Ray Train and under plain torch DDP (the T1 baseline).

It reads top to bottom: seeds, model, data, optimiser, resume, steps, final adapter. Every source of
randomness is a function of (seed, step, rank), so a run resumed from a checkpoint at step k repeats
the uninterrupted run bit for bit on CPU with the same world size. With `privacy` set (DP-SGD), the
batches are Poisson samples and each step goes through Opacus (private_steps.py); the noise is
seeded by (seed, step) as well, so a DP run repeats bit for bit too.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from services.kernel.goal import ApproachSpec
from services.kernel.modeling import AdapterMeta, TextClassifier, build_classifier, save_adapter
from services.trainer.adapters.private_steps import PrivateSteps, freeze_embeddings
from services.trainer.domain import privacy, schedule
from services.trainer.domain.privacy import PrivacyPlan

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

STATE_FILE, OPTIMIZER_FILE, PROGRESS_FILE = "trainable.safetensors", "optimizer.pt", "progress.json"
OUTCOME_FILE, ADAPTER_DIR = "outcome.json", "adapter"


@dataclass(frozen=True)
class LoopConfig:
    """One training run's inputs, as the driver hands them to every worker."""

    base_model: str
    labels: list[str]
    texts: list[str]
    targets: list[int]
    eval_texts: list[str]
    eval_targets: list[int]
    approach: ApproachSpec
    epochs: float
    learning_rate: float
    batch_size: int
    max_length: int
    seed: int
    warmup_fraction: float
    weight_decay: float
    max_grad_norm: float
    checkpoint_every: int
    explode_grad_norm: float
    threads: int
    log_every: int = 10
    use_gpu: bool = False
    privacy: PrivacyPlan | None = None   # DP-SGD's plan (domain/privacy.py); None: ordinary training


class CurvePoint(TypedDict):
    """One point of the training curve (the fields of the event's CurvePoint)."""

    step: int
    epoch: float
    loss: float
    learning_rate: float
    grad_norm: float


class WorkerSession(Protocol):
    """What the loop needs from its launcher (Ray Train or plain DDP)."""

    rank: int
    world_size: int
    device: torch.device

    def latest_checkpoint(self) -> Path | None: ...

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None: ...


def train(cfg: LoopConfig, session: WorkerSession, workdir: Path) -> None:
    """Fine-tune, checkpointing every N steps; rank 0 reports the final adapter (or the stop reason)."""
    torch.set_num_threads(cfg.threads)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(session.device.type == "cpu")
    try:
        _train(cfg, session, workdir)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def _train(cfg: LoopConfig, session: WorkerSession, workdir: Path) -> None:
    model, tokenizer = build_classifier(cfg.base_model, cfg.labels, cfg.approach, cfg.seed)
    model.to(session.device).train()
    if cfg.privacy:
        freeze_embeddings(model)
    encoded = tokenizer(cfg.texts, truncation=True, max_length=cfg.max_length)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _adamw(model, cfg)
    total = cfg.privacy.steps if cfg.privacy else schedule.total_steps(len(encoded), cfg.batch_size, cfg.epochs)
    step, curve = _resume(session.latest_checkpoint(), model, optimizer)
    private = (PrivateSteps(model, optimizer, cfg.privacy, cfg.seed, session.rank, session.world_size, step)
               if cfg.privacy else None)
    net = private.net if private else _distributed(model, session)
    stats = {"real_tokens": 0.0, "padded_tokens": 0.0, "step_seconds": 0.0, "samples": 0.0, "resumed_from_step": float(step),
             "checkpoint_seconds": 0.0, "checkpoints": 0.0}
    stop_reason = ""
    while step < total:
        began = time.perf_counter()
        lr = schedule.learning_rate(step, total, cfg.learning_rate, cfg.warmup_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # Dropout masks depend only on (seed, step, rank): resuming at any step replays them exactly.
        torch.manual_seed(cfg.seed * 1_000_003 + step * 1_009 + session.rank)
        if private:
            rows = private.rows(step, len(encoded), lengths)
        else:
            rows = schedule.shard(schedule.batch_at(lengths, cfg.batch_size, cfg.seed, step), session.rank, session.world_size)
        input_ids, mask = _collate([encoded[i] for i in rows], tokenizer.pad_token_id, session.device)
        loss = torch.zeros((), device=session.device)
        if rows:
            targets = torch.tensor([cfg.targets[i] for i in rows], device=session.device)
            loss = F.cross_entropy(net(input_ids, mask), targets)
            loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
        if private:
            grad_norm = _mean_across_workers(private.per_sample_norm(len(rows)), session)
        else:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        mean_loss = _mean_across_workers(loss.detach(), session)
        stop_reason = _health(mean_loss, grad_norm, cfg.explode_grad_norm, step)
        if stop_reason:
            break
        if private:
            private.step(step)
        else:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        step += 1
        stats["step_seconds"] += time.perf_counter() - began
        stats["real_tokens"] += float(mask.sum())
        stats["padded_tokens"] += float(mask.numel())
        stats["samples"] += len(rows)
        # A DP run publishes no curve: its losses and gradient norms are computed on the private rows.
        if not private and (step % cfg.log_every == 0 or step == total):
            curve.append({"step": step, "epoch": step / schedule.steps_per_epoch(len(encoded), cfg.batch_size),
                          "loss": mean_loss, "learning_rate": lr, "grad_norm": grad_norm})
        if step % cfg.checkpoint_every == 0 and step < total:
            began = time.perf_counter()
            _checkpoint(session, workdir, model, optimizer, step, curve, stats)
            stats["checkpoint_seconds"] += time.perf_counter() - began
            stats["checkpoints"] += 1
    spent: dict[str, float] = {}
    if private:
        private.close()
        assert cfg.privacy is not None  # private is only built from a plan
        spent = privacy.run_metrics(cfg.privacy, step, private.spent())
    _finish(cfg, session, workdir, model, tokenizer, step, curve, stats, stop_reason, spent)


def _distributed(model: TextClassifier, session: WorkerSession) -> torch.nn.Module:
    if session.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [session.device.index] if session.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _adamw(model: TextClassifier, cfg: LoopConfig) -> torch.optim.AdamW:
    # No weight decay on biases and LayerNorm weights (1-d tensors): decaying them only hurts.
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for _, p in named if p.ndim > 1], "weight_decay": cfg.weight_decay},
              {"params": [p for _, p in named if p.ndim <= 1], "weight_decay": 0.0}]
    # foreach=False: the single-tensor path is the reference implementation, identical across runs.
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, foreach=False)


def _collate(rows: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest row of this batch only (dynamic padding); an empty batch (DP-SGD's Poisson
    sampling can draw one) is (0, 0)."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    return ids.to(device), mask.to(device)


def _mean_across_workers(loss: torch.Tensor, session: WorkerSession) -> float:
    # Every worker sees the same mean loss, so they all stop at the same step (no hung collective).
    if session.world_size > 1:
        loss = loss.clone()
        dist.all_reduce(loss)
        loss /= session.world_size
    return float(loss)


def _health(loss: float, grad_norm: float, explode: float, step: int) -> str:
    """Why training must stop now, or "" (the grad norm is the same on every worker after all-reduce)."""
    if not math.isfinite(loss):
        return f"non-finite loss ({loss}) at step {step + 1}"
    if not math.isfinite(grad_norm) or grad_norm > explode:
        return f"exploding gradient norm {grad_norm:.4g} (> {explode:g}) at step {step + 1}"
    return ""


def _trainable_state(model: TextClassifier) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _checkpoint(session: WorkerSession, workdir: Path, model: TextClassifier, optimizer: torch.optim.Optimizer,
                step: int, curve: list[CurvePoint], stats: dict[str, float]) -> None:
    """Rank 0 writes trainable weights, optimiser state and progress; every rank reports (a barrier)."""
    folder = None
    if session.rank == 0:
        folder = workdir / f"step-{step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        save_file(_trainable_state(model), str(folder / STATE_FILE))
        torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
        (folder / PROGRESS_FILE).write_text(json.dumps({"step": step, "curve": curve}))
    session.report({"step": float(step), **stats}, folder)


def _resume(checkpoint: Path | None, model: TextClassifier, optimizer: torch.optim.Optimizer) -> tuple[int, list[CurvePoint]]:
    """Restore weights, optimiser and step from a checkpoint folder (safetensors + weights_only)."""
    if checkpoint is None:
        return 0, []
    state = load_file(str(checkpoint / STATE_FILE))
    missing = model.load_state_dict(state, strict=False)
    if missing.unexpected_keys:
        raise ValueError(f"checkpoint has unknown tensors: {missing.unexpected_keys[:3]}")
    optimizer.load_state_dict(torch.load(checkpoint / OPTIMIZER_FILE, weights_only=True))
    progress = json.loads((checkpoint / PROGRESS_FILE).read_text())
    return int(progress["step"]), list(progress["curve"])


def _finish(cfg: LoopConfig, session: WorkerSession, workdir: Path, model: TextClassifier,
            tokenizer: PreTrainedTokenizerBase, step: int, curve: list[CurvePoint], stats: dict[str, float],
            stop_reason: str, spent: dict[str, float]) -> None:
    """Rank 0 saves the adapter (unless stopped) and evaluates it; the final report carries both (and,
    for a DP run, the privacy spent: `spent`)."""
    folder = None
    metrics: dict[str, float] = {"step": float(step), **stats}
    if session.rank == 0:
        folder = workdir / "final"
        folder.mkdir(parents=True, exist_ok=True)
        outcome: dict[str, object] = {"status": "failed" if stop_reason else "succeeded", "reason": stop_reason,
                                      "curve": curve, "steps": step, "stats": stats, "metrics": {}}
        if not stop_reason:
            model.eval()
            meta = AdapterMeta(method=cfg.approach.method, base_model=cfg.base_model, max_length=cfg.max_length)
            save_adapter(model, cfg.labels, meta, folder / ADAPTER_DIR)
            evaluated = _evaluate(model, tokenizer, cfg, session.device) | spent
            outcome["metrics"] = evaluated
            metrics.update(evaluated)
        (folder / OUTCOME_FILE).write_text(json.dumps(outcome))
    session.report(metrics, folder)


def _evaluate(model: TextClassifier, tokenizer: PreTrainedTokenizerBase, cfg: LoopConfig, device: torch.device) -> dict[str, float]:
    """Accuracy and loss on the registered eval split (the evaluator owns the real gate)."""
    if not cfg.eval_texts:
        return {}
    correct, loss_sum = 0, 0.0
    with torch.inference_mode():
        for start in range(0, len(cfg.eval_texts), 128):
            enc = tokenizer(cfg.eval_texts[start:start + 128], padding="longest", truncation=True,
                            max_length=cfg.max_length, return_tensors="pt").to(device)
            y = torch.tensor(cfg.eval_targets[start:start + 128], device=device)
            logits = model(enc["input_ids"], enc["attention_mask"])
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
    n = len(cfg.eval_texts)
    return {"eval_accuracy": correct / n, "eval_loss": loss_sum / n}


def config_summary(cfg: LoopConfig) -> dict[str, object]:
    """The loop's settings without the data (for logs)."""
    summary = asdict(cfg)
    for key in ("texts", "targets", "eval_texts", "eval_targets"):
        summary[key] = len(summary[key])
    return summary
