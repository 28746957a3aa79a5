"""Ground truth: feedback.recorded joined to the prediction it is about, live accuracy windows, rollbacks.

The feedback consumer stores each feedback.recorded (once per feedback id) and nothing else. A single
matcher (a periodic job, one writer of the accuracy state) joins stored feedback to its prediction
through the ledger (every inference.logged is indexed there by request id), so feedback that arrives
before its prediction reached the ledger waits instead of being lost. Joined feedback fills the
adapter's window; a full window (the goal's `rollback.accuracy_drop.min_samples`, or 200) is judged
(domain/accuracy.py): its accuracy and calibration are stored, and a significant drop below the
adapter's evaluated accuracy opens an accuracy incident that asks for a rollback (a canary or a
recently promoted champion, like drift) or tells a person; a later window within the tolerance closes it.
The rollback request, the alert and the window commit in one transaction with the outbox.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Incoming, Outgoing, ce_type
from services.kernel.goal import RollbackSpec
from services.kernel.goals import latest_goal
from services.kernel.outbox import emit
from services.kernel.periodic import Periodic
from services.kernel.store import Store
from services.monitor import instruments
from services.monitor.domain import alerts
from services.monitor.domain.accuracy import AccuracyVerdict, judge_window
from services.monitor.store import AccuracyStateRow, AccuracyWindowRow, EvaluatedRow, FeedbackRow, LedgerRow, LineageKey
from services.monitor.windows import rollback_for

log = logging.getLogger(__name__)
DEFAULT_WINDOW = 200          # feedback per window when the goal names no accuracy_drop (measured, never acted on)
MATCH_BATCH = 2000            # feedback joined per transaction
MATCH_HORIZON_MS = 7 * 86_400_000  # feedback whose prediction never reaches the ledger stops being retried after this
_LOGGED = ce_type("inference.logged")
AlertEmitter = Callable[[alerts.Alert, str, str], Outgoing]  # (alert, the id it derives from, subject) -> alert.raised


def on_feedback_recorded(inc: Incoming[ev.FeedbackRecorded], session: Session) -> list[Outgoing]:
    """Keep the feedback until the matcher joins it to its prediction (the same feedback id counts once)."""
    m = inc.message
    feedback_id = m.feedback_id or inc.id
    if session.get(FeedbackRow, feedback_id) is None:
        session.add(FeedbackRow(feedback_id=feedback_id, request_id=m.request_id, goal_name=m.goal_name,
                                label=m.label or m.reference, source=m.source or "unspecified",
                                received_ms=int(inc.time.timestamp() * 1000), adapter_digest="", problem=""))
    return []


def on_eval_passed(outcome: ev.EvalOutcome, session: Session) -> None:
    """Remember the accuracy an approved adapter was evaluated at: live accuracy is compared with it."""
    if "accuracy" in outcome.metrics:
        session.merge(EvaluatedRow(adapter_digest=outcome.adapter.digest, goal_name=outcome.goal_name,
                                   eval_id=outcome.eval_id, accuracy=float(outcome.metrics["accuracy"])))


@dataclass(frozen=True)
class Joined:
    """What one feedback turned out to say about its prediction."""

    goal: str
    adapter: str
    correct: bool
    confidence: float
    logged: ev.InferenceLogged


def _prediction(session: Session, request_id: str) -> ev.InferenceLogged | None:
    row = session.execute(
        sa.select(LedgerRow.payload).join(LineageKey, LineageKey.seq == LedgerRow.seq)
        .where(LineageKey.key == f"request:{request_id}", LedgerRow.ce_type == _LOGGED).limit(1)).scalar()
    return ev.InferenceLogged.FromString(row) if row is not None else None


def _join(session: Session, fb: FeedbackRow, now_ms: int) -> Joined | None:
    """Join one stored feedback to its prediction; None while the prediction is not in the ledger yet."""
    logged = _prediction(session, fb.request_id)
    if logged is None:
        if now_ms - fb.received_ms > MATCH_HORIZON_MS:
            fb.matched_ms, fb.problem = now_ms, "no prediction with this request id reached the ledger"
        return None
    fb.matched_ms = now_ms
    if fb.goal_name and logged.goal_name != fb.goal_name:
        fb.problem = f"the request was a prediction of goal {logged.goal_name!r}, not {fb.goal_name!r}"
        return None
    if logged.error:
        fb.problem = "the request failed: there was no answer to judge"
        return None
    fb.goal_name, fb.adapter_digest = logged.goal_name, logged.adapter_digest
    fb.correct, fb.confidence = logged.label == fb.label, logged.confidence
    return Joined(logged.goal_name, logged.adapter_digest, bool(fb.correct), logged.confidence, logged)


def match(store: Store, alert_event: AlertEmitter, now_ms: int | None = None) -> int:
    """Join waiting feedback to predictions and judge every window that fills; returns how many joined."""
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    closed: list[tuple[str, str, AccuracyVerdict]] = []
    with store.session() as session:
        query = sa.select(FeedbackRow).where(FeedbackRow.matched_ms.is_(None)).order_by(FeedbackRow.received_ms).limit(MATCH_BATCH)
        waiting = session.execute(query.with_for_update(skip_locked=True)).scalars().all()
        joined = [j for fb in waiting if (j := _join(session, fb, now)) is not None]
        session.flush()
        touched: dict[tuple[str, str], Joined] = {}
        for j in joined:
            state = _state(session, j.goal, j.adapter)
            state.pending += 1
            touched[(j.goal, j.adapter)] = j
        for (goal, adapter), last in touched.items():
            for out in _close_full_windows(session, goal, adapter, last, now, alert_event, closed):
                emit(session, out)
    # Committed: count and export what this transaction did.
    instruments.feedback_joined(len(joined))
    for goal, adapter, verdict in closed:
        instruments.accuracy_window(goal, adapter, verdict.accuracy, verdict.ece)
    return len(joined)


def _state(session: Session, goal: str, adapter: str) -> AccuracyStateRow:
    state = session.get(AccuracyStateRow, (goal, adapter), with_for_update=True)
    if state is None:
        state = AccuracyStateRow(goal_name=goal, adapter_digest=adapter, pending=0, windows=0, incident_id="")
        session.add(state)
    return state


def _spec(session: Session, goal: str) -> tuple[RollbackSpec, bool]:
    found = latest_goal(session, goal)
    return (found.rollback, found.policy.auto_rollback) if found else (RollbackSpec(), True)


def _close_full_windows(session: Session, goal: str, adapter: str, last: Joined, now_ms: int,
                        alert_event: AlertEmitter, closed: list[tuple[str, str, AccuracyVerdict]]) -> list[Outgoing]:
    state = _state(session, goal, adapter)
    spec, auto = _spec(session, goal)
    size = spec.accuracy_drop.min_samples if spec.accuracy_drop else DEFAULT_WINDOW
    evaluated_row = session.get(EvaluatedRow, adapter)
    evaluated = evaluated_row.accuracy if evaluated_row else None
    out: list[Outgoing] = []
    while state.pending >= size:
        rows = session.execute(
            sa.select(FeedbackRow).where(FeedbackRow.goal_name == goal, FeedbackRow.adapter_digest == adapter,
                                         FeedbackRow.window_index.is_(None), FeedbackRow.correct.is_not(None))
            .order_by(FeedbackRow.matched_ms, FeedbackRow.received_ms, FeedbackRow.feedback_id).limit(size)).scalars().all()
        if len(rows) < size:  # cannot happen (count and rows commit together); start counting afresh
            state.pending = len(rows)
            break
        verdict = judge_window([r.confidence or 0.0 for r in rows], [bool(r.correct) for r in rows], evaluated, spec.accuracy_drop)
        for r in rows:
            r.window_index = state.windows
        session.add(AccuracyWindowRow(goal_name=goal, adapter_digest=adapter, index=state.windows, samples=verdict.samples,
                                      correct=verdict.correct, accuracy=verdict.accuracy, evaluated=verdict.evaluated,
                                      p_value=verdict.p_value, ece=verdict.ece, breached=verdict.breached, closed_ms=now_ms))
        closed.append((goal, adapter, verdict))
        state.windows += 1
        state.pending -= size
        out += _decide(session, state, verdict, spec, auto, last, now_ms, alert_event, rows[-1].feedback_id)
    return out


def _decide(session: Session, state: AccuracyStateRow, verdict: AccuracyVerdict, spec: RollbackSpec, auto: bool, last: Joined,
            now_ms: int, alert_event: AlertEmitter, source_id: str) -> list[Outgoing]:
    goal, adapter = state.goal_name, state.adapter_digest
    if not verdict.breached:
        if not state.incident_id or verdict.p_value is None:
            return []
        state.incident_id = ""
        recovered = alerts.Alert("accuracy_recovered", "info", goal,
                                 f"live accuracy {verdict.accuracy:.1%} on adapter {adapter[:19]} is back within the tolerance",
                                 adapter=adapter)
        return [alert_event(recovered, f"{source_id}:w{state.windows - 1}", goal)]
    if state.incident_id:  # the incident is open: one request, one alert
        return []
    assert verdict.evaluated is not None and verdict.p_value is not None and spec.accuracy_drop is not None
    numbers = {"live_accuracy": verdict.accuracy, "evaluated_accuracy": verdict.evaluated, "samples": float(verdict.samples),
               "p_value": verdict.p_value, "max_drop": spec.accuracy_drop.max_drop, "ece": verdict.ece}
    what = (f"live accuracy {verdict.accuracy:.1%} over {verdict.samples} labelled predictions, "
            f"{verdict.evaluated:.1%} evaluated (p={verdict.p_value:.2g})")
    asked = rollback_for(session, goal, adapter, last.logged, spec, auto, now_ms, what, numbers)
    state.incident_id = asked.incident_id
    alert = alerts.Alert("accuracy", "critical", goal, f"live accuracy dropped on adapter {adapter[:19]}: {what}",
                         asked.reason, adapter=adapter)
    return [*asked.requests, alert_event(alert, f"{source_id}:w{state.windows - 1}", goal)]


def feedback_matcher(store: Store, every_s: float, alert_event: AlertEmitter) -> Periodic:
    """Runs `match` every `every_s` seconds on a thread."""
    return Periodic(lambda: match(store, alert_event), every_s, "feedback matcher")
