"""Persistence, one incident per drift episode, rollback vs escalation, cooldown."""

from __future__ import annotations

from services.monitor.domain.incidents import Deployment, DriftState, RollbackPolicy, decide

POLICY = RollbackPolicy(drift_windows=2, cooldown_seconds=300, recent_promotion_seconds=3600, auto_rollback=True)
CANARY = Deployment("dep-1", "sha256:a", "canary")
HOUR_MS = 3_600_000


def _run(verdicts, deployment=CANARY, policy=POLICY, last_rollback_ms=0, now_ms=10 * HOUR_MS):
    state, decisions = DriftState(), []
    for i, drifted in enumerate(verdicts):
        d = decide(state, drifted, policy, deployment, now_ms, last_rollback_ms, f"inc-{i}")
        state = d.state
        decisions.append(d)
    return decisions


def test_one_drifted_window_is_not_enough():
    assert [d.action for d in _run([True, False, True, False])] == ["none"] * 4


def test_persistent_drift_opens_one_incident_and_one_rollback():
    decisions = _run([True, True, True, True, True])
    assert [d.opened for d in decisions] == [False, True, False, False, False]
    assert [d.action for d in decisions].count("rollback") == 1
    assert decisions[-1].state.incident_id == "inc-1"


def test_a_clean_window_closes_the_incident():
    decisions = _run([True, True, False, True, True])
    assert [d.opened for d in decisions] == [False, True, False, False, True]


def test_old_champion_escalates_instead_of_rolling_back():
    old = Deployment("dep-0", "sha256:a", "champion", promoted_at_ms=0)
    d = _run([True, True], deployment=old)[-1]
    assert d.opened and d.action == "escalate" and "person" in d.reason


def test_recently_promoted_champion_is_rolled_back():
    recent = Deployment("dep-0", "sha256:a", "champion", promoted_at_ms=10 * HOUR_MS - 60_000)
    assert _run([True, True], deployment=recent)[-1].action == "rollback"


def test_policy_without_auto_rollback_escalates():
    manual = RollbackPolicy(2, 300, 3600, auto_rollback=False)
    assert _run([True, True], policy=manual)[-1].action == "escalate"


def test_cooldown_escalates_a_second_incident():
    d = _run([True, True], last_rollback_ms=10 * HOUR_MS - 60_000)[-1]
    assert d.action == "escalate" and "cooldown" in d.reason
    assert _run([True, True], last_rollback_ms=10 * HOUR_MS - 600_000)[-1].action == "rollback"


def test_unknown_adapter_escalates():
    assert _run([True, True], deployment=None)[-1].action == "escalate"
