"""The rollout state machine: every transition and refusal, in milliseconds."""

from __future__ import annotations

from typing import TypeVar

import pytest

from services.deployer.domain.rollout import (
    Adapter,
    Advanced,
    Plan,
    Policy,
    Promoted,
    RolledBack,
    Rollout,
    Started,
    StepStats,
    Transition,
    Unload,
    judge,
    offer,
    release_previous,
    rollback,
)
from services.kernel.errors import IllegalTransition

CANARY = Plan(strategy="canary", steps=(10, 50, 100), min_requests_per_step=100, min_step_seconds=5,
              max_step_seconds=600, error_rate=0.02, latency_p99_ms=100, recent_promotion_seconds=60)
BLUE_GREEN = CANARY.replace(strategy="blue-green", min_agreement=0.9)
D = TypeVar("D", Started, Advanced, Promoted, RolledBack, Unload)


def adapter(n: int) -> Adapter:
    return Adapter(digest=f"sha256:{n:064x}", uri=f"/a/{n}", deployment_id=f"dep-{n}", goal_version="sha256:g")


def champion_only(plan: Plan = CANARY) -> Rollout:
    return offer(Rollout(goal="g"), adapter(1), plan, Policy(), now=0).rollout


def ok(requests: int, drift: bool = False) -> StepStats:
    return StepStats(requests=requests, compared=requests, agreed=requests, p99_ms=10, drift=drift)


def judged(r: Rollout, stats: StepStats, now: float) -> Transition:
    """judge() where the test expects a decision."""
    t = judge(r, stats, now=now)
    assert t is not None
    return t


def nth(t: Transition, i: int, kind: type[D]) -> D:
    """The i-th decision, which the test expects to be a `kind`."""
    d = t.decisions[i]
    assert isinstance(d, kind), d
    return d


def kinds(t: Transition) -> list[str]:
    return [type(d).__name__ for d in t.decisions]


def test_first_adapter_becomes_champion_directly() -> None:
    t = offer(Rollout(goal="g"), adapter(1), CANARY, Policy(), now=0)
    assert t.rollout.state == "promoted" and t.rollout.champion == adapter(1) and t.rollout.candidate is None
    assert kinds(t) == ["Started", "Promoted"]
    assert nth(t, 1, Promoted).reason == "first model for the goal" and nth(t, 0, Started).percent == 100


def test_canary_starts_at_first_step() -> None:
    t = offer(champion_only(), adapter(2), CANARY, Policy(), now=10)
    assert t.rollout.state == "canary" and t.rollout.candidate_percent == 10
    assert t.decisions == (Started(adapter=adapter(2), strategy="canary", champion_digest=adapter(1).digest,
                                   percent=10),)


def test_blue_green_starts_mirroring_at_zero() -> None:
    t = offer(champion_only(BLUE_GREEN), adapter(2), BLUE_GREEN, Policy(), now=10)
    assert t.rollout.state == "mirroring" and t.rollout.candidate_percent == 0
    assert nth(t, 0, Started).percent == 0


def test_duplicate_or_retired_offer_refused() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=1).rollout
    for dup in (adapter(1), adapter(2)):
        with pytest.raises(IllegalTransition, match="already deployed"):
            offer(r, dup, CANARY, Policy(), now=2)
    back = rollback(r, adapter(2).digest, "manual", "ops", now=3).rollout
    with pytest.raises(IllegalTransition, match="rolled back"):
        offer(back, adapter(2), CANARY, Policy(), now=4)


def test_canary_waits_for_requests_and_time_then_advances() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    assert judge(r, ok(99), now=100) is None          # too few requests
    assert judge(r, ok(100), now=4) is None           # too soon (min_step_seconds=5)
    assert judge(r, ok(100, drift=True), now=100) is None
    t = judge(r, ok(100), now=5)
    assert t is not None and kinds(t) == ["Advanced"] and t.rollout.candidate_percent == 50
    assert isinstance(t.decisions[0], Advanced) and t.decisions[0].step.requests == 100


def test_last_step_promotes_and_keeps_previous_loaded() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    r = judged(r, ok(100), now=5).rollout
    t = judged(r, ok(100), now=10)
    assert t.rollout.state == "promoted" and t.rollout.champion == adapter(2)
    assert t.rollout.previous == adapter(1) and t.rollout.loaded() == {adapter(1).digest, adapter(2).digest}
    promoted = t.decisions[0]
    assert isinstance(promoted, Promoted) and [s.percent for s in promoted.steps] == [10, 50]
    assert promoted.previous_digest == adapter(1).digest


def test_error_rate_breach_rolls_back_early() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    # 2 errors are within 2 % of the step's 100 requests; the third can never be.
    assert judge(r, StepStats(requests=10, errors=2), now=1) is None
    t = judged(r, StepStats(requests=10, errors=3), now=1)
    assert t.rollout.state == "rolled_back" and t.rollout.candidate is None and t.rollout.champion == adapter(1)
    back, unload = t.decisions
    assert isinstance(back, RolledBack) and back.trigger == "error_rate" and back.restored_digest == adapter(1).digest
    assert unload == Unload(digest=adapter(2).digest) and adapter(2).digest in t.rollout.retired


def test_latency_breach_rolls_back() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    assert judge(r, StepStats(requests=50, slow=1), now=1) is None
    t = judged(r, StepStats(requests=50, slow=2), now=1)
    assert nth(t, 0, RolledBack).trigger == "latency"


def test_error_rate_judged_on_actual_rate_past_the_minimum() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    assert nth(judged(r, StepStats(requests=1000, errors=21), now=1), 0, RolledBack).trigger == "error_rate"


def test_step_timeout_rolls_back() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    t = judged(r, ok(3), now=601)
    assert nth(t, 0, RolledBack).trigger == "timeout"


def test_blue_green_switches_after_agreement_or_rolls_back() -> None:
    r = offer(champion_only(BLUE_GREEN), adapter(2), BLUE_GREEN, Policy(), now=0).rollout
    assert judge(r, StepStats(requests=100, compared=50, agreed=50), now=10) is None
    t = judged(r, ok(100), now=10)
    assert t.rollout.state == "promoted" and t.rollout.champion == adapter(2) and kinds(t) == ["Promoted"]
    bad = judged(r, StepStats(requests=100, compared=100, agreed=89), now=10)
    assert nth(bad, 0, RolledBack).trigger == "agreement"


def test_rollback_of_canary_and_of_fresh_champion() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    t = rollback(r, adapter(2).digest, "rollback_requested", "drift", now=1)
    assert t.rollout.champion == adapter(1) and nth(t, 0, RolledBack).restored_digest == adapter(1).digest
    promoted = judged(judged(r, ok(100), now=5).rollout, ok(100), now=10).rollout
    t = rollback(promoted, "", "manual", "ops", now=20)
    assert t.rollout.champion == adapter(1) and t.rollout.previous is None and t.rollout.state == "rolled_back"
    assert t.decisions[1] == Unload(digest=adapter(2).digest)


def test_stale_rollbacks_refused() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    with pytest.raises(IllegalTransition):
        rollback(r, adapter(9).digest, "rollback_requested", "x", now=1)
    with pytest.raises(IllegalTransition):
        rollback(champion_only(), "", "manual", "first model has nothing to restore", now=1)
    promoted = judged(judged(r, ok(100), now=5).rollout, ok(100), now=10).rollout
    with pytest.raises(IllegalTransition):
        rollback(promoted, adapter(2).digest, "manual", "too late", now=10 + 61)
    back = rollback(r, adapter(2).digest, "manual", "x", now=1).rollout
    with pytest.raises(IllegalTransition):
        rollback(back, adapter(2).digest, "manual", "twice", now=2)


def test_release_previous_after_window() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    promoted = judged(judged(r, ok(100), now=5).rollout, ok(100), now=10).rollout
    assert release_previous(promoted, now=70) is None
    t = release_previous(promoted, now=71)
    assert t is not None and t.rollout.previous is None and t.decisions == (Unload(digest=adapter(1).digest),)


def test_new_offer_supersedes_running_canary_and_releases_previous() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(), now=0).rollout
    t = offer(r, adapter(3), CANARY, Policy(), now=1)
    assert kinds(t) == ["RolledBack", "Unload", "Started"] and nth(t, 0, RolledBack).trigger == "superseded"
    assert t.rollout.candidate == adapter(3) and t.rollout.step_index == 0
    promoted = judged(judged(r, ok(100), now=5).rollout, ok(100), now=10).rollout
    t = offer(promoted, adapter(3), CANARY, Policy(), now=11)
    assert kinds(t) == ["Unload", "Started"] and t.decisions[0] == Unload(digest=adapter(1).digest)


def test_judge_ignores_settled_states() -> None:
    assert judge(champion_only(), StepStats(requests=1000, errors=1000), now=1) is None


def test_rollout_round_trips_as_json() -> None:
    r = offer(champion_only(), adapter(2), CANARY, Policy(blocked_labels=("x",)), now=0).rollout
    assert Rollout.model_validate_json(r.model_dump_json()) == r


def test_the_100_step_is_the_promotion_unless_it_is_the_only_step() -> None:
    # [10, 50, 100]: passing 50 promotes (test_last_step_promotes_...); [100] alone has nothing
    # before it, so its one step runs with the candidate on all traffic, then promotes.
    only = CANARY.replace(steps=(100,))
    r = offer(champion_only(only), adapter(2), only, Policy(), now=0).rollout
    assert r.state == "canary" and r.candidate_percent == 100
    t = judged(r, ok(100), now=5)
    assert t.rollout.state == "promoted" and [s.percent for s in nth(t, 0, Promoted).steps] == [100]
