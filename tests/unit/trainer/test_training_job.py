"""The training job's ends: a failure marks the run failed and yields one run.finished with the reason; a success
names the adapter and the trainer's artifact signature over it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.artifact_signing import BUNDLE_MEDIA_TYPE, verify_adapter_signature
from services.kernel.blobs import BlobStore
from services.kernel.errors import PermanentError
from services.kernel.events import Incoming, Outgoing
from services.kernel.goal import load_goal
from services.kernel.jobs import Job, JobContext
from services.kernel.modeling import ADAPTER_FILES_LORA, adapter_digest
from services.kernel.settings import REPO_ROOT
from services.kernel.store import Store, jobs
from services.trainer import handlers, training
from services.trainer import store as tables
from services.trainer.adapters.ray_training import TrainOutcome
from services.trainer.settings import TrainerSettings
from services.trainer.training_job import TrainingJob

M = TypeVar("M", bound=Message)
GOAL = load_goal(REPO_ROOT / "goals" / "banking77.yaml")


def _deliver(store: Store, handler: Callable[[Incoming[M], Session], Iterable[Outgoing]], m: M) -> None:
    store.run(lambda s: list(handler(Incoming("e" + m.DESCRIPTOR.name, "x", "t", datetime.now(UTC), "s", m), s)))


def _queued(settings: TrainerSettings, attempt: int) -> tuple[Store, Job]:
    """The trainer's store with the banking77 goal met by a registered dataset: its training job, at `attempt`."""
    store = Store.open(settings, "trainer", tables.MIGRATIONS)
    registered = ev.DatasetRegistered(dataset_name="banking77", dataset_version="sha256:" + "1" * 64, labels=["a", "b"],
                                      train=ev.ArtifactRef(digest="sha256:" + "2" * 64, uri="/t"),
                                      eval=ev.ArtifactRef(digest="sha256:" + "3" * 64, uri="/e"))
    goal_applied = ev.GoalApplied(goal_name=GOAL.name, goal_version=GOAL.version, goal_json=GOAL.canonical_json())
    _deliver(store, handlers.on_dataset_registered, registered)
    _deliver(store, handlers.on_goal_applied, goal_applied)
    row = store.run(lambda s: s.execute(sa.select(jobs)).one())
    return store, Job(row.id, row.kind, row.key, row.payload, attempt, "")


def test_on_failure_marks_the_run_failed_and_emits_one_run_finished(tmp_path: Path) -> None:
    settings = TrainerSettings(state_dir=tmp_path)
    store, job = _queued(settings, 2)
    [out] = TrainingJob(settings, store, BlobStore.from_settings(settings)).on_failure(job, PermanentError("loss is nan"))
    assert out.event == "run.finished" and out.subject == GOAL.name
    assert isinstance(out.message, ev.RunFinished)
    assert out.message.status == "failed" and out.message.failure_reason == "loss is nan" and out.message.attempts == 2
    assert not out.message.adapter.digest
    [run] = store.run(lambda s: tables.list_runs(s))
    assert run.status == "failed" and run.reason == "loss is nan" and run.id == out.message.run_id


def test_a_finished_run_names_the_trainers_signature_over_the_unchanged_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The success path with training stubbed out (prepare/fit): the adapter is signed, its digest is what fit wrote."""
    settings = TrainerSettings(state_dir=tmp_path)
    store, job = _queued(settings, 1)
    blobs = BlobStore.from_settings(settings)
    prepared = SimpleNamespace(goal=GOAL, workers=1, cfg=SimpleNamespace(use_gpu=False),
                               envelope=SimpleNamespace(to_json=lambda: b"{}", digest="sha256:" + "4" * 64))
    written: list[str] = []

    def fit(_settings: object, prep: object, _run: str, out_dir: Path) -> SimpleNamespace:
        out_dir.mkdir(parents=True)
        for name in ADAPTER_FILES_LORA:
            (out_dir / name).write_bytes(name.encode() * 4)
        written.append(adapter_digest(out_dir))
        return SimpleNamespace(prepared=prep, wall_seconds=1.0, outcome=TrainOutcome("succeeded", "", out_dir, steps=3))

    monkeypatch.setattr(training, "prepare", lambda *_a: prepared)
    monkeypatch.setattr(training, "fit", fit)
    [out] = TrainingJob(settings, store, blobs).execute(job, JobContext(store, job, threading.Event()))
    assert isinstance(out.message, ev.RunFinished)
    finished = out.message
    assert finished.status == "succeeded" and finished.adapter.digest == written[0]    # signing changed no byte of it
    assert finished.adapter_signature.media_type == BUNDLE_MEDIA_TYPE and finished.adapter_signature.digest
    fetched = blobs.fetch_tree(finished.adapter, tmp_path / "fetched")
    verify_adapter_signature(settings, fetched, blobs.get_bytes(finished.adapter_signature), finished.adapter.digest)
    assert sorted(p.name for p in fetched.iterdir()) == sorted(ADAPTER_FILES_LORA)  # the signature is not in the tree
