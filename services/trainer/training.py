"""One training run end to end: data in, envelope built, Ray Train fitted, adapter out.

Shared by the training job (runs triggered by events) and `tuneline runs reproduce` (the same run
rebuilt from its envelope), so a reproduction takes exactly the path the original took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from services.kernel.blobs import BlobStore
from services.kernel.goal import Goal, goal_from_json
from services.kernel.modeling import resolve_base_model
from services.trainer.adapters import environment, parquet_data, ray_training
from services.trainer.adapters.training_loop import LoopConfig
from services.trainer.domain import privacy, schedule
from services.trainer.domain.envelope import Envelope
from services.trainer.domain.runs import RegisteredDataset, Snapshot
from services.trainer.settings import TrainerSettings


@dataclass(frozen=True)
class PreparedRun:
    """Everything a fit needs, and the envelope that describes it."""

    goal: Goal
    cfg: LoopConfig
    envelope: Envelope
    workers: int


@dataclass(frozen=True)
class FinishedRun:
    """A fit's outcome with its wall time."""

    prepared: PreparedRun
    outcome: ray_training.TrainOutcome
    wall_seconds: float


def ray_options(settings: TrainerSettings) -> ray_training.RayOptions:
    """Ray's connection and size from the settings."""
    return ray_training.RayOptions(settings.ray_address, settings.ray_num_cpus, settings.ray_object_store_mb * 1024 * 1024)


def prepare(settings: TrainerSettings, blobs: BlobStore, goal: Goal, dataset: RegisteredDataset, scratch: Path,
            world_size: int | None = None, use_gpu: bool | None = None) -> PreparedRun:
    """Fetch and verify the data, decide the topology, and write down the envelope."""
    resolve_base_model(goal.base_model)  # refuse pickles and fake safetensors before Ray starts (R26)
    ray_training.ensure_ray(ray_options(settings))
    t = goal.training
    train = parquet_data.load_split(blobs, dataset.train, dataset, scratch / "train.parquet")
    train = parquet_data.subsample(train, goal.data.train_fraction, goal.data.seed)
    held = parquet_data.load_split(blobs, dataset.eval, dataset, scratch / "eval.parquet")
    workers = world_size or t.workers
    gpu = use_gpu if use_gpu is not None else (ray_training.gpus_visible() if t.use_gpu == "auto" else bool(t.use_gpu))
    threads = settings.threads_per_worker(workers)
    # DP-SGD's plan (noise, sampling rate, steps within the budget) is decided here, once, for all workers.
    dp = (privacy.plan(t.privacy, len(train.texts), t.batch_size, schedule.total_steps(len(train.texts), t.batch_size, t.epochs))
          if t.privacy else None)
    cfg = LoopConfig(
        base_model=goal.base_model, labels=dataset.labels, texts=train.texts, targets=train.targets,
        eval_texts=held.texts, eval_targets=held.targets, approach=goal.approach, epochs=t.epochs,
        learning_rate=t.learning_rate, batch_size=t.batch_size, max_length=t.max_length, seed=t.seed,
        warmup_fraction=t.warmup_fraction, weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        checkpoint_every=t.checkpoint_every_steps, explode_grad_norm=settings.explode_grad_norm, threads=threads,
        use_gpu=gpu, privacy=dp)
    envelope = Envelope(
        code_version=environment.code_version(settings.code_version),
        dependency_lock=environment.dependency_lock_digest(), goal_name=goal.name, goal_version=goal.version,
        goal_json=goal.canonical_json(), dataset_name=dataset.name, dataset_version=dataset.version,
        train_digest=dataset.train.digest, eval_digest=dataset.eval.digest, train_uri=dataset.train.uri,
        eval_uri=dataset.eval.uri, seeds={"training": t.seed, "data": goal.data.seed}, world_size=workers,
        use_gpu=gpu, hardware=environment.hardware(gpu, threads), labels=list(dataset.labels),
        text_field=dataset.text_field, label_field=dataset.label_field, privacy=dp.as_dict() if dp else None)
    return PreparedRun(goal, cfg, envelope, workers)


def fit(settings: TrainerSettings, prepared: PreparedRun, run_name: str, out_dir: Path) -> FinishedRun:
    """Train under Ray (resuming `run_name`'s checkpoints if it ran before) and time it."""
    storage = settings.state_dir / "trainer" / "ray"  # run_name's checkpoints live in storage/run_name
    storage.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    outcome = ray_training.fit(prepared.cfg, run_name, storage, prepared.workers, prepared.goal.training.max_failures, out_dir)
    return FinishedRun(prepared, outcome, time.perf_counter() - began)


def dataset_of(envelope: Envelope) -> RegisteredDataset:
    """The registered dataset an envelope names (its snapshots are fetched and verified again)."""
    return RegisteredDataset(envelope.dataset_name, envelope.dataset_version, Snapshot(envelope.train_digest, envelope.train_uri),
                             Snapshot(envelope.eval_digest, envelope.eval_uri), list(envelope.labels),
                             envelope.text_field, envelope.label_field)


def goal_of(envelope: Envelope) -> Goal:
    """The goal an envelope names."""
    return goal_from_json(envelope.goal_json)


def with_loop(prepared: PreparedRun, **changes: Any) -> PreparedRun:
    """The same prepared run with some loop settings changed (tests, benchmarks).

    `changes` are LoopConfig's fields; dataclasses.replace refuses an unknown one (TypeError).
    """
    return replace(prepared, cfg=replace(prepared.cfg, **changes))
