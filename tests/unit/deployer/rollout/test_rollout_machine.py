"""The rollout state machine: every transition and refusal, in milliseconds."""

from __future__ import annotations

from typing import TypeVar

import pytest

from services.deployer.domain.rollout import (
    Adapter,
    Advanced,
    Held,
    Pending,
    Plan,
    Policy,
    Promoted,
    Resumed,
    Reviewed,
    RolledBack,
    Rollout,
    Started,
    StepStats,
    Transition,
    Unload,
    hold,
    judge,
    offer,
    release_previous,
    resume,
    review,
    rollback,
)
from services.kernel.errors import IllegalTransition

CANARY = Plan(strategy="canary", steps=(10, 50, 100), min_requests_per_step=100, min_step_seconds=5,
              max_step_seconds=600, error_rate=0.02, latency_p99_ms=100, recent_promotion_seconds=60)
BLUE_GREEN = CANARY.replace(strategy="blue-green", min_agreement=0.9)
D = TypeVar("D", Started, Advanced, Promoted, RolledBack, Pending, Reviewed, Held, Resumed, Unload)


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


# ---------------------------------------------------------------- approval (rollout.approval: required)
APPROVED = CANARY.replace(approval=True)


def test_with_approval_required_an_offer_waits_and_takes_no_traffic():
    r = champion_only()
    t = offer(r, adapter(2), APPROVED, Policy(), now=10)
    assert kinds(t) == ["Pending"] and nth(t, 0, Pending).adapter.digest == adapter(2).digest
    assert t.rollout.state == "pending_approval" and t.rollout.candidate_percent == 0 and not t.rollout.in_progress
    assert judge(t.rollout, ok(10_000), now=10_000) is None, "traffic numbers never move a waiting adapter"
    assert adapter(2).digest in t.rollout.loaded(), "loaded (verified at admission) so that approval is instant"


def test_approval_starts_the_canary_and_names_who_approved():
    waiting = offer(champion_only(), adapter(2), APPROVED, Policy(), now=10).rollout
    t = review(waiting, adapter(2).digest, True, "oncall-approver", "looked at the eval report", now=50)
    assert kinds(t) == ["Reviewed", "Started"]
    assert nth(t, 0, Reviewed).by == "oncall-approver" and nth(t, 0, Reviewed).approved
    assert t.rollout.state == "canary" and t.rollout.candidate_percent == 10 and t.rollout.step_started_at == 50


def test_the_first_model_of_a_goal_waits_too_and_becomes_champion_once_approved():
    waiting = offer(Rollout(goal="g"), adapter(1), APPROVED, Policy(), now=0).rollout
    assert waiting.champion is None and waiting.pending
    t = review(waiting, "", True, "ops", "", now=5)
    assert kinds(t) == ["Reviewed", "Started", "Promoted"] and t.rollout.champion == adapter(1)


def test_a_rejected_adapter_is_unloaded_and_never_offered_again():
    waiting = offer(champion_only(), adapter(2), APPROVED, Policy(), now=10).rollout
    t = review(waiting, adapter(2).digest, False, "ops", "too many escalations", now=20)
    assert kinds(t) == ["Reviewed", "Unload"] and not nth(t, 0, Reviewed).approved
    assert t.rollout.state == "rejected" and t.rollout.champion == adapter(1) and t.rollout.candidate is None
    with pytest.raises(IllegalTransition, match="rolled back"):
        offer(t.rollout, adapter(2), APPROVED, Policy(), now=30)


def test_review_refuses_another_digest_or_a_goal_with_nothing_waiting():
    waiting = offer(champion_only(), adapter(2), APPROVED, Policy(), now=10).rollout
    with pytest.raises(IllegalTransition, match="not waiting for approval"):
        review(waiting, adapter(3).digest, True, "ops", "", now=20)
    with pytest.raises(IllegalTransition, match="not waiting for approval"):
        review(champion_only(), "", True, "ops", "", now=20)


def test_a_newer_adapter_supersedes_the_waiting_one_as_a_rejection_by_the_deployer():
    waiting = offer(champion_only(), adapter(2), APPROVED, Policy(), now=10).rollout
    t = offer(waiting, adapter(3), APPROVED, Policy(), now=20)
    assert kinds(t) == ["Reviewed", "Unload", "Pending"]
    assert nth(t, 0, Reviewed).by == "deployer" and "superseded" in nth(t, 0, Reviewed).reason
    assert t.rollout.candidate == adapter(3) and adapter(2).digest in t.rollout.retired


# ---------------------------------------------------------------- hold / resume
def canary_at(now: float = 0) -> Rollout:
    return offer(champion_only(), adapter(2), CANARY, Policy(), now=now).rollout


def test_a_held_canary_neither_advances_nor_times_out_and_keeps_its_share():
    t = hold(canary_at(), "", "oncall", "waiting for the data team", now=1)
    assert kinds(t) == ["Held"] and nth(t, 0, Held).percent == 10 and nth(t, 0, Held).by == "oncall"
    held = t.rollout
    assert held.held and held.candidate_percent == 10
    assert judge(held, ok(1000), now=100) is None, "enough requests do not advance a held step"
    assert judge(held, ok(0), now=10_000) is None, "a held step does not time out"


def test_a_held_canary_still_rolls_back_on_a_breach():
    held = hold(canary_at(), "", "oncall", "", now=1).rollout
    t = judged(held, StepStats(requests=100, errors=50), now=2)
    assert kinds(t) == ["RolledBack", "Unload"] and nth(t, 0, RolledBack).trigger == "error_rate"
    assert not t.rollout.held, "a rolled-back rollout is no longer held"


def test_resume_restarts_the_steps_clock_and_the_step_then_advances():
    held = hold(canary_at(), "", "oncall", "", now=1).rollout
    t = resume(held, adapter(2).digest, "oncall", "data team said go", now=40)
    assert kinds(t) == ["Resumed"] and nth(t, 0, Resumed).held_seconds == 39
    r = t.rollout
    assert not r.held and r.step_started_at == 40
    assert judge(r, ok(1000), now=42) is None, "min_step_seconds counts again from the resume"
    assert kinds(judged(r, ok(1000), now=45)) == ["Advanced"]


def test_hold_and_resume_refuse_what_cannot_be_held():
    with pytest.raises(IllegalTransition, match="only a canary or mirror"):
        hold(champion_only(), "", "oncall", "", now=1)
    with pytest.raises(IllegalTransition, match="not held"):
        resume(canary_at(), "", "oncall", "", now=1)
    held = hold(canary_at(), "", "oncall", "", now=1).rollout
    with pytest.raises(IllegalTransition, match="already held"):
        hold(held, "", "other", "", now=2)
    with pytest.raises(IllegalTransition, match="cannot resume"):
        resume(held, adapter(9).digest, "oncall", "", now=3)
