"""The rollout controller on a real store, blob store and RoutingTable (fake adapter pool, no broker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.deployer.control.background import TICK_S
from services.deployer.handlers import manual_rollback, on_rollback_requested
from services.deployer.serving.outcome import ServedOutcome
from services.deployer.store import RolloutRow
from services.kernel.errors import IllegalTransition, IntegrityError, InvalidInput, TransientError
from services.kernel.events import Incoming
from services.kernel.ids import uuid7
from services.kernel.outbox import emit
from services.kernel.retry import RetryPolicy
from services.kernel.signing import Unauthenticated
from services.kernel.store import outbox
from tests.support import signed_adapter

pytestmark = pytest.mark.integration
M = TypeVar("M", bound=Message)
Deployment = ev.DeploymentStarted | ev.DeploymentPromoted | ev.DeploymentRolledBack


def deliver(w, message: M, handler=None) -> Incoming[M]:
    """Hand a message to a deployer handler (eval.passed's by default, with the world's trusted artifact keys)."""
    inc: Incoming[M] = w.incoming(message)
    with w.store.session() as s:
        for out in (handler or w.on_eval_passed)(inc, s, controller=w.controller):
            emit(s, out)
    return inc


def events(w) -> list[tuple[str, Deployment]]:
    with w.store.session() as s:
        rows = s.execute(sa.select(outbox.c.event_type, outbox.c.value).order_by(outbox.c.seq)).all()
    types: dict[str, type[Deployment]] = {"deployment.started": ev.DeploymentStarted,
                                          "deployment.promoted": ev.DeploymentPromoted,
                                          "deployment.rolled_back": ev.DeploymentRolledBack}
    return [(t, types[t].FromString(v)) for t, v in rows]


def _as(event: Message, kind: type[M]) -> M:
    """The event, which the test expects to be a `kind`."""
    assert isinstance(event, kind), event
    return event


def serve(w, n: int, *, candidate_error: bool = False, candidate_ms: float = 5.0,
          disagree: bool = False) -> list[str]:
    """Simulate the server: route each request, report outcomes (and mirror outcomes) to the observer."""
    answered = []
    for _ in range(n):
        rid = uuid7()
        served, mirror = w.routing.choose("g", rid)
        is_new = served.role == "canary"
        answered.append(served.digest)
        w.controller.on_served("g", served, ServedOutcome(rid, "a", 0.9, candidate_ms if is_new else 5.0,
                                                          candidate_error and is_new, "", None))
        if mirror is not None:
            w.controller.on_served("g", mirror, ServedOutcome(rid, "b" if disagree else "a", 0.9, candidate_ms,
                                                              candidate_error, "", "a"))
    return answered


def with_champion(w, goal=None) -> tuple[ev.ArtifactRef, ev.ArtifactRef]:
    if goal is not None:
        w.apply(goal)
    first, second = w.adapter(1), w.adapter(2)
    deliver(w, w.passed(first))
    deliver(w, w.passed(second))
    return first, second


def test_first_adapter_becomes_champion(world) -> None:
    ref = world.adapter(1)
    deliver(world, world.passed(ref))
    assert world.routing.choose("g", "r")[0].digest == ref.digest and world.pool.digests == {ref.digest}
    kinds = events(world)
    assert [k for k, _ in kinds] == ["deployment.started", "deployment.promoted"]
    assert _as(kinds[1][1], ev.DeploymentPromoted).reason == "first model for the goal"


REFUSED_AS = {"tampered bytes": IntegrityError, "no artifact signature": Unauthenticated,
              "another adapter's signature": Unauthenticated, "garbage signature": Unauthenticated,
              "signature by another key": Unauthenticated, "signature not in the store": Unauthenticated}


@pytest.mark.parametrize("why", ["not passed", "criterion failed", "other goal version", *REFUSED_AS])
def test_unapproved_unsigned_or_mismatched_adapter_is_refused(world, why: str, tmp_path: Path) -> None:
    ref = world.adapter(1)
    message = world.passed(ref)
    if why == "not passed":
        message = world.passed(ref, passed=False)
    elif why == "criterion failed":
        message = world.passed(ref, failing=("ece",))
    elif why == "other goal version":
        message.outcome.goal_version = "sha256:" + "0" * 64
    elif why == "tampered bytes":
        (Path(ref.uri) / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    elif why == "no artifact signature":
        message.outcome.ClearField("adapter_signature")
    elif why == "another adapter's signature":
        message.outcome.adapter_signature.CopyFrom(world.signatures[world.adapter(2).digest])
    elif why == "garbage signature":
        message.outcome.adapter_signature.CopyFrom(world.blobs.put_bytes(b"{}"))
    elif why == "signature by another key":
        stranger = world.settings.replace(keys_dir=tmp_path / "stranger-keys")
        _, forged = signed_adapter(stranger, world.blobs, world.settings.path("src", "1", "x").parent)
        message.outcome.adapter_signature.CopyFrom(forged)
    else:
        message.outcome.adapter_signature.digest = "sha256:" + "5" * 64
        message.outcome.adapter_signature.uri = ""
    with pytest.raises(REFUSED_AS.get(why, InvalidInput)) as refused:
        deliver(world, message)
    assert world.pool.loads == [] and world.routing.get("g") is None and events(world) == []
    assert not world.controller.adapter_dir(ref.digest).exists(), "nothing refused stays in the adapters folder"
    if REFUSED_AS.get(why) is Unauthenticated:
        assert ref.digest in str(refused.value) and "signature" in str(refused.value)


def test_duplicate_eval_passed_refused(world) -> None:
    ref = world.adapter(1)
    deliver(world, world.passed(ref))
    with pytest.raises(IllegalTransition):
        deliver(world, world.passed(ref))
    assert world.pool.loads == [ref.digest]


def test_canary_advances_and_promotes(world) -> None:
    first, second = with_champion(world)
    assert world.controller.rollout("g").candidate_percent == 10
    answered = serve(world, 3000)
    r = world.controller.rollout("g")
    assert r.state == "promoted" and r.champion.digest == second.digest and r.previous.digest == first.digest
    assert answered.count(second.digest) > 0 and world.pool.digests == {first.digest, second.digest}
    assert _wait_for(lambda: events(world)[-1][0] == "deployment.promoted")
    promoted = _as(events(world)[-1][1], ev.DeploymentPromoted)
    assert [s.percent for s in promoted.steps] == [10, 50] and all(s.requests == 50 for s in promoted.steps)


@pytest.mark.parametrize("fault", ["errors", "latency"])
def test_breaching_canary_is_at_zero_within_a_second(world, fault: str) -> None:
    first, second = with_champion(world)
    kwargs = {"candidate_error": True} if fault == "errors" else {"candidate_ms": 500.0}
    serve(world, 200, **kwargs)
    assert world.controller.rollout("g").state == "rolled_back"
    assert set(serve(world, 500)) == {first.digest}
    assert _wait_for(lambda: any(k == "deployment.rolled_back" for k, _ in events(world)))
    back = _as(next(e for k, e in events(world) if k == "deployment.rolled_back"), ev.DeploymentRolledBack)
    assert back.trigger == ("error_rate" if fault == "errors" else "latency")
    assert back.restored_digest == first.digest and 0 <= back.decision_to_zero_ms < 1000
    assert _wait_for(lambda: world.pool.digests == {first.digest})


def test_rollback_requested_takes_canary_to_zero(world) -> None:
    first, second = with_champion(world)
    serve(world, 10)
    msg = ev.RollbackRequested(goal_name="g", adapter_digest=second.digest, reason="drift", incident_id="inc-1")
    started = time.perf_counter()
    deliver(world, msg, on_rollback_requested)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert set(serve(world, 300)) == {first.digest}
    back = _as(events(world)[-1][1], ev.DeploymentRolledBack)
    assert back.incident_id == "inc-1" and back.trigger == "rollback_requested" and back.decision_to_zero_ms < 1000
    assert elapsed_ms < 1000
    with pytest.raises(IllegalTransition):
        deliver(world, msg, on_rollback_requested)


def test_manual_rollback_of_fresh_champion(world) -> None:
    first, second = with_champion(world)
    serve(world, 3000)
    rollout, back, to_zero_ms = manual_rollback(world.controller, "g", "ops says no")
    assert rollout.champion is not None
    assert rollout.champion.digest == first.digest and back.adapter.digest == second.digest and to_zero_ms < 1000
    assert set(serve(world, 100)) == {first.digest}


def test_blue_green_mirrors_then_switches_atomically(world) -> None:
    first, second = with_champion(world, world.make_goal("blue-green"))
    assert world.controller.rollout("g").state == "mirroring"
    answered = serve(world, 400)
    switch = answered.index(second.digest)
    # Before the switch every answer is the champion's; after it, every answer is the new adapter's.
    assert set(answered[:switch]) == {first.digest} and set(answered[switch:]) == {second.digest}
    assert switch >= 50
    assert world.controller.rollout("g").state == "promoted"


def test_blue_green_disagreement_rolls_back(world) -> None:
    first, _ = with_champion(world, world.make_goal("blue-green"))
    assert set(serve(world, 200, disagree=True)) == {first.digest}
    assert world.controller.rollout("g").state == "rolled_back"


def test_state_and_progress_survive_restart(world) -> None:
    first, second = with_champion(world)
    while world.controller.rollout("g").step_index == 0:
        serve(world, 10)
    serve(world, 30)      # step 0 done, some progress into step 1 (50 %)
    before = world.controller.rollout("g")
    stats = world.controller.step_stats("g")
    world.controller.save_progress()
    world.controller.stop()
    world.pool.digests.clear()
    world.routing.remove("g")
    world.controller = world.new_controller()
    world.controller.start()
    after = world.controller.rollout("g")
    assert after == before and after.candidate_percent == 50
    assert world.controller.step_stats("g").requests == stats.requests > 0
    assert world.pool.digests == {first.digest, second.digest}
    assert {world.routing.choose("g", uuid7())[0].digest for _ in range(200)} == {first.digest, second.digest}


def test_ticker_advances_on_time(world) -> None:
    world.apply(world.make_goal(min_step_seconds=30))
    with_champion(world)
    serve(world, 1500)
    assert world.controller.step_stats("g").requests >= 50 and world.controller.rollout("g").step_index == 0
    world.clock.now += 31
    assert _wait_for(lambda: world.controller.rollout("g").step_index == 1, 20 * TICK_S)


def test_writes_the_store_refuses_are_retried_in_order_and_escalated(world) -> None:
    world.controller.stop()
    fast = RetryPolicy(attempts=3, base_s=0.001, cap_s=0.01, retry_on=lambda err: True)
    world.controller = world.new_controller(write_retry=fast)
    world.controller.start()
    first, second = with_champion(world)
    real_run, refusing = world.store.run, threading.Event()

    def run(work):
        if refusing.is_set():
            raise TransientError("database is locked")
        return real_run(work)

    world.store.run = run
    refusing.set()
    serve(world, 200, candidate_error=True)
    # Traffic moved at once; the rolled_back row and event wait in the writer, retried where they stand.
    assert world.controller.rollout("g").state == "rolled_back" and set(serve(world, 100)) == {first.digest}
    assert _wait_for(lambda: world.controller.writer_status().stuck)
    assert world.controller.writer_status().escalated == 1 and world.pool.digests == {first.digest, second.digest}
    refusing.clear()
    assert _wait_for(lambda: not world.controller.writer_status().stuck and world.pool.digests == {first.digest})
    assert _wait_for(lambda: events(world)[-1][0] == "deployment.rolled_back")
    with world.store.session() as s:
        assert s.execute(sa.select(RolloutRow.state).where(RolloutRow.goal == "g")).scalar_one() == "rolled_back"
    assert world.controller.writer_status().escalated == 1


def _wait_for(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()
