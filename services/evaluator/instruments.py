"""The evaluator's instruments (docs/metrics.md): gate decisions, and each criterion's outcome, by goal."""

from __future__ import annotations

from tuneline.events.v1 import events_pb2 as ev

from services.kernel.metrics import meter

DECISIONS = meter().create_counter("tuneline.gate.decisions", unit="{decision}", description="Gate decisions by goal")
CRITERIA = meter().create_counter("tuneline.gate.criteria", unit="{criterion}",
                                  description="Acceptance criteria judged, by goal, criterion and outcome")


def decided(out: ev.EvalOutcome) -> None:
    """Count one gate decision and every criterion it judged."""
    DECISIONS.add(1, {"goal": out.goal_name, "decision": "passed" if out.passed else "failed"})
    for c in out.criteria:
        CRITERIA.add(1, {"goal": out.goal_name, "criterion": c.name, "outcome": "passed" if c.passed else "failed"})
