"""Alerts for ops: from other services' failures and from windows that breach error-rate or latency limits."""

from __future__ import annotations

import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.monitor import handlers
from services.monitor.domain.alerts import serving_health


@pytest.mark.parametrize("message,handler,kind,severity", [
    (ev.DatasetRejected(dataset_name="b77", publisher="team", failed_gates=[ev.GateResult(gate="pii", reason="emails")]),
     handlers.on_dataset_rejected, "dataset_rejected", "warning"),
    (ev.RunFinished(run_id="r1", goal_name="g", status="failed", failure_reason="oom", attempts=3),
     handlers.on_run_finished, "run_failed", "warning"),
    (ev.EvalFailed(outcome=ev.EvalOutcome(eval_id="e1", goal_name="g", summary="accuracy 0.7 < 0.85")),
     handlers.on_eval_failed, "eval_failed", "info"),
    (ev.DeadLetter(original_topic="tuneline.goal.applied", consumer="trainer", attempts=3, error="boom"),
     handlers.on_dead_letter, "deadletter", "critical"),
    (ev.DeadLetter(original_topic="tuneline.eval.passed", consumer="deployer", attempts=1, error_type="Unauthenticated",
                   error="eval.passed is not signed"),
     handlers.on_dead_letter, "forged_decision", "critical"),
])
def test_failures_elsewhere_raise_one_alert(store, make_incoming, message, handler, kind, severity):
    with store.session() as s:
        out = handler(make_incoming(message), s)
    assert len(out) == 1 and out[0].event == "alert.raised"
    alert = out[0].message
    assert (alert.kind, alert.severity) == (kind, severity) and alert.source_event_id and alert.trace_id == "ab" * 16


def test_a_successful_run_raises_nothing(store, make_incoming):
    with store.session() as s:
        assert handlers.on_run_finished(make_incoming(ev.RunFinished(run_id="r1", status="succeeded")), s) == []


def test_window_health_flags_error_rate_and_latency_breaches():
    errors = [True] * 3 + [False] * 97
    health = serving_health(errors, [5.0] * 94 + [500.0] * 3 + [1.0] * 3, max_error_rate=0.02, max_p99_ms=100)
    assert health.error_breach and health.error_rate == pytest.approx(0.03)
    assert health.latency_breach
    calm = serving_health([False] * 100, [5.0] * 100, 0.02, 100)
    assert not calm.error_breach and not calm.latency_breach
