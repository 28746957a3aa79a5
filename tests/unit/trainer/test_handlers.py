"""The trainer's handlers on a SQLite store: when goals and datasets meet, exactly one run is queued."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import InvalidInput, NotFound
from services.kernel.events import Incoming
from services.kernel.goal import load_goal
from services.kernel.ids import uuid7
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import Store, jobs
from services.trainer import handlers
from services.trainer import store as tables
from services.trainer.domain.runs import request_from_json

M = TypeVar("M", bound=Message)
GOAL = load_goal(REPO_ROOT / "goals" / "banking77.yaml")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(Settings(state_dir=tmp_path), "trainer", tables.MIGRATIONS)


def _incoming(message: M, event_id: str | None = None) -> Incoming[M]:
    return Incoming(id=event_id or uuid7(), type="x", source="test", time=datetime.now(UTC), subject="s", message=message)


def _goal_applied(goal=GOAL) -> ev.GoalApplied:
    return ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())


def _registered(name: str = "banking77", version: str = "sha256:" + "1" * 64) -> ev.DatasetRegistered:
    return ev.DatasetRegistered(
        dataset_name=name, dataset_version=version, labels=["a", "b"], text_field="text", label_field="label",
        train=ev.ArtifactRef(digest="sha256:" + "2" * 64, uri="/t.parquet"),
        eval=ev.ArtifactRef(digest="sha256:" + "3" * 64, uri="/e.parquet"))


def _handle(store: Store, handler, incoming: Incoming[M]) -> None:
    store.run(lambda s: list(handler(incoming, s)))


def _jobs(store: Store) -> Sequence[sa.Row[Any]]:
    return store.run(lambda s: s.execute(sa.select(jobs)).all())


def _runs(store: Store) -> list[tables.RunRow]:
    return store.run(lambda s: tables.list_runs(s))


@pytest.mark.parametrize("goal_first", [True, False])
def test_whichever_comes_second_starts_one_run(store: Store, goal_first: bool) -> None:
    steps = [(handlers.on_goal_applied, _goal_applied()), (handlers.on_dataset_registered, _registered())]
    for handler, message in steps if goal_first else steps[::-1]:
        _handle(store, handler, _incoming(message))
    [job] = _jobs(store)
    [run] = _runs(store)
    request = request_from_json(job.payload)
    assert request.run_id == run.id and run.status == "queued" and run.goal_version == GOAL.version
    assert request.dataset.train.digest == "sha256:" + "2" * 64
    assert run.trigger == ("dataset.registered" if goal_first else "goal.applied")


def test_reapplying_the_same_goal_or_redelivering_the_dataset_starts_nothing_new(store: Store) -> None:
    for _ in range(2):
        _handle(store, handlers.on_goal_applied, _incoming(_goal_applied()))
        _handle(store, handlers.on_dataset_registered, _incoming(_registered()))
    assert len(_jobs(store)) == 1 and len(_runs(store)) == 1
    _handle(store, handlers.on_dataset_registered, _incoming(_registered(version="sha256:" + "9" * 64)))
    assert len(_runs(store)) == 2  # a new dataset version is a new run


def test_a_dataset_no_goal_trains_on_starts_nothing(store: Store) -> None:
    _handle(store, handlers.on_goal_applied, _incoming(_goal_applied()))
    _handle(store, handlers.on_dataset_registered, _incoming(_registered(name="clinc150")))
    assert _jobs(store) == []


def test_each_run_requested_is_its_own_run(store: Store) -> None:
    _handle(store, handlers.on_goal_applied, _incoming(_goal_applied()))
    _handle(store, handlers.on_dataset_registered, _incoming(_registered()))
    for _ in range(2):
        _handle(store, handlers.on_run_requested, _incoming(ev.RunRequested(goal_name=GOAL.name, reason="manual")))
    assert [r.trigger for r in _runs(store)].count("run.requested") == 2


def test_run_requested_for_an_unknown_goal_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        _handle(store, handlers.on_run_requested, _incoming(ev.RunRequested(goal_name="nope")))


@pytest.mark.parametrize(("policy", "flag", "runs"), [(False, True, 0), (True, False, 0), (True, True, 1)])
def test_rollback_retrains_only_when_asked_and_allowed(store: Store, policy: bool, flag: bool, runs: int) -> None:
    goal = GOAL.replace(policy=GOAL.policy.replace(retrain_on_rollback=policy))
    _handle(store, handlers.on_dataset_registered, _incoming(_registered()))
    _handle(store, handlers.on_goal_applied, _incoming(_goal_applied(goal)))
    _handle(store, handlers.on_rollback_requested,
            _incoming(ev.RollbackRequested(goal_name=goal.name, retrain=flag, reason="drift", incident_id="i1")))
    assert [r.trigger for r in _runs(store)].count("rollback.requested") == runs


def test_goal_whose_json_does_not_match_its_version_is_refused(store: Store) -> None:
    bad = _goal_applied()
    bad.goal_version = "sha256:" + "0" * 64
    with pytest.raises(InvalidInput):
        _handle(store, handlers.on_goal_applied, _incoming(bad))
