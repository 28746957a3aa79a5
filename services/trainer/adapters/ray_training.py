"""Ray Train (v2 API) around the training loop: TorchTrainer, checkpoints, FailureConfig retries.

A run's Ray name is its run id and its storage is the trainer's state folder, so a TorchTrainer started
again under the same name (the trainer service restarted mid-run) restores the latest checkpoint, and
a worker killed mid-training is replaced and resumes from that checkpoint (FailureConfig).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from services.trainer.adapters.training_loop import ADAPTER_DIR, OUTCOME_FILE, CurvePoint, LoopConfig, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayOptions:
    """Where Ray runs: a local instance by default (small object store, no dashboard) or a cluster."""

    address: str = ""
    num_cpus: int = 2
    object_store_bytes: int = 100 * 1024 * 1024


@dataclass(frozen=True)
class TrainOutcome:
    """What a finished TorchTrainer produced: an adapter folder, or the reason it stopped."""

    status: str                      # succeeded | failed
    reason: str
    adapter_dir: Path | None
    curve: list[CurvePoint] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    steps: int = 0


def ensure_ray(options: RayOptions) -> None:
    """Start (or connect to) Ray once per process."""
    import ray

    if ray.is_initialized():
        return
    env = {"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "RAY_TRAIN_V2_ENABLED": "1"}}
    if options.address:
        ray.init(address=options.address, runtime_env=env, include_dashboard=False, log_to_driver=False)
        return
    ray.init(num_cpus=options.num_cpus, object_store_memory=options.object_store_bytes, include_dashboard=False,
             runtime_env=env, log_to_driver=False, configure_logging=False)


def gpus_visible() -> bool:
    """Whether the Ray cluster has GPUs (use_gpu: auto)."""
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]  # ray.cluster_resources is unannotated
    return resources.get("GPU", 0) > 0


class _RaySession:
    """The loop's view of a Ray Train worker."""

    def __init__(self, scratch: Path) -> None:
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.rank, self.world_size = ctx.get_world_rank(), ctx.get_world_size()
        self.device = ray.train.torch.get_device() if torch.cuda.is_available() else torch.device("cpu")
        self._scratch = scratch

    def latest_checkpoint(self) -> Path | None:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        return Path(checkpoint.to_directory(str(self._scratch / "restored")))

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)


def _worker(config: dict[str, LoopConfig]) -> None:
    with tempfile.TemporaryDirectory(prefix="tuneline-train-") as scratch:
        train(config["cfg"], _RaySession(Path(scratch)), Path(scratch) / "out")


def fit(cfg: LoopConfig, run_name: str, storage: Path, workers: int, max_failures: int, out_dir: Path) -> TrainOutcome:
    """Run the loop on `workers` Ray workers; copy the final adapter to out_dir."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(
        _worker,
        train_loop_config={"cfg": cfg},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=cfg.use_gpu),
        run_config=RunConfig(name=run_name, storage_path=str(storage), failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )
    try:
        result = trainer.fit()
    except Exception as err:  # noqa: BLE001 - Ray wraps the worker's error; the run fails with its text
        return TrainOutcome("failed", f"training failed after {max_failures + 1} attempt(s): {_root_cause(err)}", None)
    if result.checkpoint is None:
        return TrainOutcome("failed", "training ended without a final checkpoint", None)
    return _read_final(Path(result.checkpoint.to_directory()), out_dir)


def _root_cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return (str(err).strip().splitlines() or [type(err).__name__])[-1][:500]


def _read_final(folder: Path, out_dir: Path) -> TrainOutcome:
    outcome = json.loads((folder / OUTCOME_FILE).read_text())
    adapter = None
    if outcome["status"] == "succeeded":
        if out_dir.exists():
            shutil.rmtree(out_dir)
        adapter = Path(shutil.copytree(folder / ADAPTER_DIR, out_dir))
    return TrainOutcome(outcome["status"], outcome["reason"], adapter, outcome["curve"], outcome["metrics"],
                        outcome["stats"], int(outcome["steps"]))
