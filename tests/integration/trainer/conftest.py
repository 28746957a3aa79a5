"""Trainer integration helpers: a local Ray, tiny banking77 data on the real model, Ray worker pids."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch

from services.kernel.goal import ApproachSpec
from services.kernel.settings import REPO_ROOT
from services.trainer.adapters import ray_training
from services.trainer.adapters.training_loop import LoopConfig

BASE = "bundled:all-MiniLM-L6-v2"


def tiny_rows(n: int = 200, offset: int = 0) -> pd.DataFrame:
    """n banking77 training rows (the reproducibility and kill tests stay tiny: 2 shared cores)."""
    return pd.read_csv(REPO_ROOT / "datasets" / "banking77" / "train.csv").iloc[offset:offset + n].reset_index(drop=True)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session (2 CPUs, small object store, no dashboard)."""
    import ray

    torch.set_num_threads(1)
    ray_training.ensure_ray(ray_training.RayOptions(num_cpus=2))
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_config():
    """A LoopConfig factory: 200 rows, max_length 32, 1 epoch, checkpoint every 3 steps, the real model."""
    def make(**changes) -> LoopConfig:
        df = tiny_rows()
        labels = sorted(df.label.unique())
        index = {label: i for i, label in enumerate(labels)}
        values = dict(base_model=BASE, labels=labels, texts=df.text.tolist(), targets=[index[x] for x in df.label],
                      eval_texts=df.text.tolist()[:40], eval_targets=[index[x] for x in df.label][:40],
                      approach=ApproachSpec(), epochs=1.0, learning_rate=2e-3, batch_size=16, max_length=32, seed=17,
                      warmup_fraction=0.06, weight_decay=0.01, max_grad_norm=1.0, checkpoint_every=3,
                      explode_grad_norm=1e4, threads=1, log_every=1)
        values.update(changes)
        return LoopConfig(**values)
    return make


def ray_train_workers() -> list[psutil.Process]:
    """This test process's Ray Train worker processes (descendants we started, found by pid)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def checkpoints(storage: Path, run_name: str) -> list[str]:
    """The checkpoints Ray Train has committed for a run (a folder alone may still be uploading)."""
    snapshot = storage / run_name / "checkpoint_manager_snapshot.json"
    try:
        data = json.loads(snapshot.read_text())
    except (OSError, ValueError):
        return []
    return [c["checkpoint_dir_name"] for c in data.get("checkpoint_results", [])]


@pytest.fixture(scope="session")
def ray_probe():
    """(checkpoints, ray_train_workers): see the functions above."""
    return checkpoints, ray_train_workers


@pytest.fixture
def banking_rows():
    """tiny_rows(n, offset): a slice of banking77's training rows."""
    return tiny_rows
