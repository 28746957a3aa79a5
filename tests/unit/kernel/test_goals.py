"""One goal.applied contract in every service: each refuses a goal that is not what the event
declares in the same way (InvalidInput, nothing stored), and keeps a matching one readable back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.deployer import handlers as deployer
from services.deployer import store as deployer_store
from services.deployer.controller import Controller
from services.evaluator import handlers as evaluator
from services.evaluator import store as evaluator_store
from services.ingest import handlers as ingest
from services.ingest import store as ingest_store
from services.kernel.errors import InvalidInput
from services.kernel.events import Incoming
from services.kernel.goal import Goal, load_goal
from services.kernel.goals import all_goals, goal_by_version, goal_for_dataset, goal_versions, goals, latest_goal
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import Store, utcnow
from services.monitor import handlers as monitor
from services.monitor import store as monitor_store
from services.trainer import handlers as trainer
from services.trainer import store as trainer_store

GOAL = load_goal(REPO_ROOT / "goals" / "banking77.yaml")
OTHER_VERSION = "sha256:" + "0" * 64


class NothingDeployed:
    """Stands in for the deployer's controller when no goal has a rollout: a policy changes nothing."""

    def set_policy(self, goal: str, policy: object) -> None:
        return None


Handler = Callable[[Incoming[ev.GoalApplied], Session], object]
SERVICES: dict[str, tuple[Path, Callable[[], Handler]]] = {
    "ingest": (ingest_store.MIGRATIONS, lambda: ingest.on_goal_applied),
    "trainer": (trainer_store.MIGRATIONS, lambda: trainer.on_goal_applied),
    "evaluator": (evaluator_store.MIGRATIONS, lambda: evaluator.on_goal_applied),
    "deployer": (deployer_store.MIGRATIONS,
                 lambda: partial(deployer.on_goal_applied, controller=cast(Controller, NothingDeployed()))),
    "monitor": (monitor_store.MIGRATIONS, lambda: monitor.on_goal_applied),
}


@pytest.fixture(params=list(SERVICES))
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Handler]]:
    """Each service's real store (its migrations run) and its goal.applied handler."""
    migrations, handler = SERVICES[request.param]
    store = Store.open(Settings(state_dir=tmp_path), request.param, migrations)
    yield store, handler()
    store.dispose()


def _incoming(msg: ev.GoalApplied) -> Incoming[ev.GoalApplied]:
    return Incoming(id=str(uuid.uuid4()), type="goal.applied", source="test/1", time=utcnow(), subject=msg.goal_name,
                    message=msg)


def _applied(goal: Goal, **declared: str) -> ev.GoalApplied:
    return ev.GoalApplied(goal_name=declared.get("name", goal.name), goal_version=declared.get("version", goal.version),
                          goal_json=goal.canonical_json())


def _stored(session: Session) -> int:
    return sum(session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in (goals, goal_versions))


@pytest.mark.parametrize(("declared", "named"), [
    ({"version": OTHER_VERSION}, (OTHER_VERSION, GOAL.version)),
    ({"version": ""}, ("(none)", GOAL.version)),
    ({"name": "another-goal"}, ("another-goal", GOAL.name)),
], ids=["other-version", "no-version", "other-name"])
def test_every_service_refuses_a_goal_that_is_not_what_the_event_declares(
        service: tuple[Store, Handler], declared: dict[str, str], named: tuple[str, str]) -> None:
    store, handler = service
    with store.session() as session:
        with pytest.raises(InvalidInput) as refused:
            handler(_incoming(_applied(GOAL, **declared)), session)
        assert _stored(session) == 0 and latest_goal(session, GOAL.name) is None
    assert all(name in str(refused.value) for name in named), str(refused.value)


def test_every_service_refuses_a_goal_that_does_not_parse(service: tuple[Store, Handler]) -> None:
    store, handler = service
    bad = ev.GoalApplied(goal_name=GOAL.name, goal_version=GOAL.version, goal_json='{"name": "banking77"}')
    with store.session() as session:
        with pytest.raises(InvalidInput, match="carries no valid goal"):
            handler(_incoming(bad), session)
        assert _stored(session) == 0


def test_every_service_keeps_a_matching_goal_readable_by_name_and_by_version(service: tuple[Store, Handler]) -> None:
    store, handler = service
    newer = GOAL.replace(policy=GOAL.policy.replace(escalate_below_confidence=0.7))
    for goal in (GOAL, newer):
        with store.session() as session:
            handler(_incoming(_applied(goal)), session)
    with store.session() as session:
        assert latest_goal(session, GOAL.name) == newer
        assert goal_by_version(session, GOAL.version) == GOAL and goal_by_version(session, newer.version) == newer
        assert all_goals(session) == [newer]


def test_the_goal_for_a_dataset_is_the_last_applied_that_trains_on_it(tmp_path: Path) -> None:
    store = Store.open(Settings(state_dir=tmp_path), "ingest", ingest_store.MIGRATIONS)
    second = GOAL.replace(name="second")
    moved = GOAL.replace(data=GOAL.data.replace(dataset="elsewhere"))
    for goal in (GOAL, second):
        with store.session() as session:
            ingest.on_goal_applied(_incoming(_applied(goal)), session)
    with store.session() as session:
        assert goal_for_dataset(session, GOAL.data.dataset) == second
    for goal in (moved, second.replace(data=moved.data)):
        with store.session() as session:
            ingest.on_goal_applied(_incoming(_applied(goal)), session)
    with store.session() as session:
        assert goal_for_dataset(session, GOAL.data.dataset) is None     # both goals moved to another dataset
        found = goal_for_dataset(session, "elsewhere")
        assert found is not None and found.name == "second"
