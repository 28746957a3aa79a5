"""The monitor's handlers: plain functions, a decoded event and named dependencies in, events out.

Each runs inside the kernel's transaction with the inbox row and the outbox rows of what it returns,
so a monitor killed after a decision and restarted finds its inbox row and decides nothing twice.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Incoming, Outgoing
from services.kernel.goals import apply_goal
from services.monitor import audit, feedback, retention
from services.monitor.domain.alerts import Alert
from services.monitor.store import DeploymentRow, ReferenceRow
from services.monitor.windows import WindowDeps, add_to_window

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)


def alert_event(alert: Alert, source: Incoming[M]) -> Outgoing:
    """An alert.raised event for an alert, linked to the event that caused it and its trace."""
    return alert_from(alert, source.id, source.type, source.subject, source.traceparent)


def alert_from(alert: Alert, source_id: str, source_type: str, subject: str, traceparent: str) -> Outgoing:
    """An alert.raised event for an alert caused by the event `source_id` (its id is derived from it)."""
    trace_id = alert.trace_id or (traceparent.split("-")[1] if traceparent.count("-") >= 3 else "")
    msg = ev.AlertRaised(alert_id=f"{source_id}:{alert.kind}", severity=alert.severity, goal_name=alert.goal_name,
                         summary=alert.summary, details=alert.details, source_event_id=source_id,
                         source_event_type=source_type, report_uri=alert.report_uri, trace_id=trace_id, kind=alert.kind,
                         adapter_digest=alert.adapter)
    return Outgoing(msg, alert.goal_name or subject)


def record_in_ledger(inc: Incoming[M], session: Session) -> list[Outgoing]:
    """Append any event to the audit ledger."""
    audit.append_event(inc, session)
    return []


def on_retention_applied(inc: Incoming[ev.RetentionApplied], session: Session) -> list[Outgoing]:
    """Ledger consumer: append the retention decision and carry it out in the same transaction."""
    record = audit.append_event(inc, session)
    changed = retention.apply(session, inc.message, record.seq)
    log.info("ledger record %d: text removed from %d records of goal %s (retention %d days)",
             record.seq, changed, inc.message.goal_name, inc.message.retention_days)
    return []


def on_goal_applied(inc: Incoming[ev.GoalApplied], session: Session) -> list[Outgoing]:
    """Keep the goal: its rollback section sizes windows and drives decisions."""
    apply_goal(inc, session)
    return []


def on_eval_passed(inc: Incoming[ev.EvalPassed], session: Session) -> list[Outgoing]:
    """Remember an approved adapter's reference profile and its evaluated accuracy."""
    o = inc.message.outcome
    feedback.on_eval_passed(o, session)
    ref = o.reference.table
    if not ref.digest:
        log.warning("eval %s passed adapter %s without a reference profile: no drift checks", o.eval_id, o.adapter.digest)
        return []
    session.merge(ReferenceRow(adapter_digest=o.adapter.digest, goal_name=o.goal_name, eval_id=o.eval_id,
                               table_digest=ref.digest, table_uri=ref.uri))
    return []


def _set_role(session: Session, goal: str, adapter: str, deployment_id: str, role: str, promoted_at_ms: int | None = None) -> None:
    row = session.get(DeploymentRow, (goal, adapter)) or DeploymentRow(goal_name=goal, adapter_digest=adapter, promoted_at_ms=0)
    row.deployment_id, row.role = deployment_id or row.deployment_id or "", role
    if promoted_at_ms is not None:
        row.promoted_at_ms = promoted_at_ms
    session.merge(row)


def _event_ms(inc: Incoming[M]) -> int:
    return int(inc.time.timestamp() * 1000)


def on_deployment_started(inc: Incoming[ev.DeploymentStarted], session: Session) -> list[Outgoing]:
    """A new adapter is rolling out: it is a canary until promoted."""
    m = inc.message
    _set_role(session, m.goal_name, m.adapter.digest, m.deployment_id, "canary")
    return []


def on_deployment_promoted(inc: Incoming[ev.DeploymentPromoted], session: Session) -> list[Outgoing]:
    """The adapter became the champion now; the previous champion retires."""
    m = inc.message
    if m.previous_champion_digest:
        _set_role(session, m.goal_name, m.previous_champion_digest, "", "retired")
    _set_role(session, m.goal_name, m.adapter.digest, m.deployment_id, "champion", _event_ms(inc))
    return []


def on_deployment_rolled_back(inc: Incoming[ev.DeploymentRolledBack], session: Session) -> list[Outgoing]:
    """The adapter left traffic (the restored one serves again); tell ops."""
    m = inc.message
    _set_role(session, m.goal_name, m.adapter_digest, m.deployment_id, "retired")
    if m.restored_digest:
        _set_role(session, m.goal_name, m.restored_digest, "", "champion")
    alert = Alert("rollback", "warning", m.goal_name,
                  f"adapter {m.adapter_digest[:19]} rolled back ({m.trigger}); serving {m.restored_digest[:19] or 'nothing'}",
                  m.reason, adapter=m.adapter_digest)
    return [alert_event(alert, inc)]


def on_inference_logged(inc: Incoming[ev.InferenceLogged], session: Session, deps: WindowDeps) -> list[Outgoing]:
    """Add a prediction to its window; a full window is judged (drift, errors, latency)."""
    return [alert_event(a, inc) if isinstance(a, Alert) else a for a in add_to_window(inc, session, deps)]


def on_dataset_rejected(inc: Incoming[ev.DatasetRejected], session: Session) -> list[Outgoing]:
    """Tell ops (and the publisher's on-call) that a dataset was rejected, and why."""
    m = inc.message
    gates = ", ".join(f"{g.gate}: {g.reason}" for g in m.failed_gates)
    return [alert_event(Alert("dataset_rejected", "warning", m.dataset_name,
                              f"dataset {m.dataset_name} from {m.publisher or 'unknown'} rejected", gates or m.summary), inc)]


def on_run_finished(inc: Incoming[ev.RunFinished], session: Session) -> list[Outgoing]:
    """Alert on a failed training run."""
    m = inc.message
    if m.status != "failed":
        return []
    return [alert_event(Alert("run_failed", "warning", m.goal_name, f"run {m.run_id} failed after {m.attempts} attempt(s)",
                              m.failure_reason), inc)]


def on_eval_failed(inc: Incoming[ev.EvalFailed], session: Session) -> list[Outgoing]:
    """Alert (info) when a candidate fails its gate: nothing is deployed, someone may want to know why."""
    o = inc.message.outcome
    return [alert_event(Alert("eval_failed", "info", o.goal_name, f"eval {o.eval_id} failed: {o.summary}",
                              report_uri=o.report_html.uri), inc)]


def on_dead_letter(inc: Incoming[ev.DeadLetter], session: Session) -> list[Outgoing]:
    """A consumer gave up on a record: critical, someone must look at it.

    A refused signature is its own kind (`forged_decision`): someone who is not the decider tried to
    make a decision, which is a security event, not a broken pipeline.
    """
    m = inc.message
    kind = "forged_decision" if m.error_type == "Unauthenticated" else "deadletter"
    return [alert_event(Alert(kind, "critical", inc.subject,
                              f"{m.consumer} dead-lettered {m.original_topic}[{m.partition}]@{m.offset} after {m.attempts} attempt(s)",
                              f"{m.error_type}: {m.error}"), inc)]
