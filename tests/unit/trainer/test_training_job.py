"""The training job's failure path: the run is marked failed and yields one run.finished with the reason."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.errors import PermanentError
from services.kernel.events import Incoming, Outgoing
from services.kernel.goal import load_goal
from services.kernel.jobs import Job
from services.kernel.settings import REPO_ROOT
from services.kernel.store import Store, jobs
from services.trainer import handlers
from services.trainer import store as tables
from services.trainer.settings import TrainerSettings
from services.trainer.training_job import TrainingJob

M = TypeVar("M", bound=Message)
GOAL = load_goal(REPO_ROOT / "goals" / "banking77.yaml")


def _deliver(store: Store, handler: Callable[[Incoming[M], Session], Iterable[Outgoing]], m: M) -> None:
    store.run(lambda s: list(handler(Incoming("e" + m.DESCRIPTOR.name, "x", "t", datetime.now(UTC), "s", m), s)))


def test_on_failure_marks_the_run_failed_and_emits_one_run_finished(tmp_path: Path) -> None:
    settings = TrainerSettings(state_dir=tmp_path)
    store = Store.open(settings, "trainer", tables.MIGRATIONS)
    registered = ev.DatasetRegistered(dataset_name="banking77", dataset_version="sha256:" + "1" * 64, labels=["a"],
                                      train=ev.ArtifactRef(digest="sha256:" + "2" * 64, uri="/t"),
                                      eval=ev.ArtifactRef(digest="sha256:" + "3" * 64, uri="/e"))
    goal_applied = ev.GoalApplied(goal_name=GOAL.name, goal_version=GOAL.version, goal_json=GOAL.canonical_json())
    _deliver(store, handlers.on_dataset_registered, registered)
    _deliver(store, handlers.on_goal_applied, goal_applied)
    row = store.run(lambda s: s.execute(sa.select(jobs)).one())
    job = Job(row.id, row.kind, row.key, row.payload, 2, "")
    [out] = TrainingJob(settings, store, BlobStore.from_settings(settings)).on_failure(job, PermanentError("loss is nan"))
    assert out.event == "run.finished" and out.subject == GOAL.name
    assert isinstance(out.message, ev.RunFinished)
    assert out.message.status == "failed" and out.message.failure_reason == "loss is nan" and out.message.attempts == 2
    assert not out.message.adapter.digest
    [run] = store.run(lambda s: tables.list_runs(s))
    assert run.status == "failed" and run.reason == "loss is nan" and run.id == out.message.run_id
