"""Trainer integration helpers: a local Ray, tiny banking77 data on the real model, Ray worker pids."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
import torch

from services.trainer.adapters import ray_training
from tests.integration.trainer import tiny


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session (2 CPUs, small object store, no dashboard)."""
    import ray

    torch.set_num_threads(1)
    ray_training.ensure_ray(ray_training.RayOptions(num_cpus=2))
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def reference(tmp_path_factory, ray_local):
    """One uninterrupted 2-worker run of the tiny config on the local Ray (13 steps), shared by the tests."""
    storage = tmp_path_factory.mktemp("ray")
    out = ray_training.fit(tiny.tiny_config(), "reference", storage, 2, 1, storage / "adapter")
    assert out.status == "succeeded", out.reason
    return out


@pytest.fixture(scope="session")
def tiny_config():
    """A LoopConfig factory (tiny.tiny_config): 200 rows, max_length 32, 1 epoch, checkpoint every 3 steps."""
    return tiny.tiny_config


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
    return tiny.tiny_rows
