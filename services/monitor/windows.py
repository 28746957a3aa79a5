"""Windows of inference.logged per goal and adapter: fill, judge (drift, errors, latency), decide.

The decision runs on the statistical tests of domain/drift.py (KS and chi-square in ~20 ms for a
window of 500), inside the consumer's transaction; the Evidently HTML report is rendered by a job
afterwards (M1: Evidently takes about a second per report, far more than 5 % of a window's span at
serving rates). The rollback request of an incident commits with the window that opened it, so C1
never waits for a report; the incident's `drift.detected` and its alert are emitted by the incident's
report job (services.monitor.reports), so both carry the report. Every `report_every`-th window gets
a report too.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Incoming, Outgoing
from services.kernel.features import CATEGORICAL_FEATURES, EMBEDDING_FEATURES, FEATURE_NAMES, NUMERIC_FEATURES
from services.kernel.goal import RollbackSpec
from services.kernel.goals import latest_goal
from services.kernel.ids import uuid7
from services.kernel.jobs import enqueue_job
from services.monitor import instruments
from services.monitor.batching import buffered, flush_buffers
from services.monitor.domain import alerts, incidents
from services.monitor.domain.drift import WindowVerdict, judge_window
from services.monitor.store import DeploymentRow, DriftStateRow, ReferenceRow, RollbackRow, WindowRow, WindowVerdictRow

REPORT_JOB = "drift-report"
INCIDENT_JOB = "drift-incident"  # the report of a window that opened an incident, then its drift.detected
PARQUET = "application/vnd.apache.parquet"


class Blobs(Protocol):
    def put_bytes(self, data: bytes, media_type: str = ...) -> ev.ArtifactRef: ...
    def get_bytes(self, ref: ev.ArtifactRef) -> bytes: ...


@dataclass
class WindowDeps:
    """What judging a window needs: the artifact store, a reference cache, how often to render reports."""

    blobs: Blobs
    report_every: int = 10
    references: dict[str, pd.DataFrame] = field(default_factory=dict)

    def reference(self, row: ReferenceRow) -> pd.DataFrame:
        """The reference profile table (verified against its digest on first load)."""
        if row.table_digest not in self.references:
            data = self.blobs.get_bytes(ev.ArtifactRef(digest=row.table_digest, uri=row.table_uri))
            self.references[row.table_digest] = pd.read_parquet(io.BytesIO(data))
        return self.references[row.table_digest]


def _features(m: ev.InferenceLogged) -> str:
    emb = list(m.embedding_projection) + [0.0] * (len(EMBEDDING_FEATURES) - len(m.embedding_projection))
    values = [m.confidence, m.margin, m.text_length, m.token_count, *emb[: len(EMBEDDING_FEATURES)], m.label]
    return json.dumps(values)


def _rollback_spec(session: Session, name: str) -> tuple[RollbackSpec, bool]:
    goal = latest_goal(session, name)
    return (goal.rollback, goal.policy.auto_rollback) if goal else (RollbackSpec(), True)


def _cached(session: Session, key: tuple[str, str]) -> tuple[DriftStateRow, RollbackSpec, bool]:
    # Per transaction (a batch of events): one lookup of the state and the goal per goal and adapter.
    cache: dict[tuple[str, str], tuple[DriftStateRow, RollbackSpec, bool]] = session.info.setdefault("monitor.window_state", {})
    if key not in cache:
        state = session.get(DriftStateRow, key) or DriftStateRow(
            goal_name=key[0], adapter_digest=key[1], windows=0, pending=0, consecutive=0, incident_id="", breach_open=False)
        session.add(state)
        cache[key] = (state, *_rollback_spec(session, key[0]))
    return cache[key]


def add_to_window(inc: Incoming[ev.InferenceLogged], session: Session, deps: WindowDeps) -> list[Outgoing | alerts.Alert]:
    """Store one prediction in its window; judge the window once it holds window_size predictions."""
    m = inc.message
    state, spec, auto = _cached(session, (m.goal_name, m.adapter_digest))
    buffered(session, WindowRow).append({"goal_name": m.goal_name, "adapter_digest": m.adapter_digest,
                                         "served_at_ms": m.served_at_unix_ms, "error": m.error,
                                         "latency_ms": m.latency_ms, "features_json": _features(m)})
    state.pending += 1
    out: list[Outgoing | alerts.Alert] = []
    while state.pending >= spec.window_size:
        ref_row = _reference_row(session, state.adapter_digest)
        if ref_row is None and state.pending < HOLD_WINDOWS * spec.window_size:
            # The adapter's approval (eval.passed, another topic) may not have been read yet: hold the
            # rows so these windows are judged, one by one and in order, once it is.
            break
        flush_buffers(session)
        out += _judge(inc, session, deps, state, spec, auto, ref_row)
    return out


def _reference_row(session: Session, digest: str) -> ReferenceRow | None:
    # Per transaction: a reference arrives with eval.passed, in a transaction of its own, so one
    # lookup per batch of predictions (not one per held prediction) sees every change.
    cache: dict[str, ReferenceRow | None] = session.info.setdefault("monitor.references", {})
    if digest not in cache:
        cache[digest] = session.get(ReferenceRow, digest)
    return cache[digest]


HOLD_WINDOWS = 10  # windows held for an adapter whose reference has not arrived; beyond, they pass unjudged


def _take_window(session: Session, state: DriftStateRow, size: int) -> list[WindowRow]:
    """The oldest `size` rows of the adapter's window, removed from the store."""
    where = (WindowRow.goal_name == state.goal_name, WindowRow.adapter_digest == state.adapter_digest)
    rows = list(session.execute(sa.select(WindowRow).where(*where).order_by(WindowRow.id).limit(size)).scalars())
    ids = [r.id for r in rows]
    session.execute(sa.delete(WindowRow).where(WindowRow.id.in_(ids)).execution_options(synchronize_session=False))
    # Fewer rows than counted cannot happen (rows and count commit together); if it did, judge what
    # is there and start counting afresh rather than loop on a window that never fills.
    state.pending = state.pending - len(rows) if len(rows) == size else 0
    return rows


def _frame(rows: list[WindowRow]) -> pd.DataFrame:
    return pd.DataFrame([json.loads(r.features_json) for r in rows if not r.error], columns=list(FEATURE_NAMES))


def _judge(inc: Incoming[ev.InferenceLogged], session: Session, deps: WindowDeps, state: DriftStateRow, spec: RollbackSpec,
           auto: bool, ref_row: ReferenceRow | None) -> list[Outgoing | alerts.Alert]:
    rows = _take_window(session, state, spec.window_size)
    health = alerts.serving_health([r.error for r in rows], [r.latency_ms for r in rows], spec.error_rate, spec.latency_p99_ms)
    now_ms = max(r.served_at_ms for r in rows)
    out: list[Outgoing | alerts.Alert] = list(_breaches(inc, session, state, health, spec, auto, now_ms))
    window = _frame(rows)
    if ref_row is None or len(window) < 20:
        state.windows += 1
        return out
    started = time.perf_counter()
    ref = deps.reference(ref_row)
    verdict = judge_window({c: ref[c].to_numpy() for c in FEATURE_NAMES}, {c: window[c].to_numpy() for c in FEATURE_NAMES},
                           NUMERIC_FEATURES + EMBEDDING_FEATURES, CATEGORICAL_FEATURES, spec.drift_share)
    verdict_ref, window_ref = _store_window(deps, verdict, window)
    drift_ms = (time.perf_counter() - started) * 1000
    span_ms = max(r.served_at_ms for r in rows) - min(r.served_at_ms for r in rows)
    index = state.windows
    instruments.window_judged(session, state.goal_name, state.adapter_digest, verdict.drifted, verdict.drift_share)
    opened = _decide(inc, session, state, spec, auto, verdict, verdict_ref, rows)
    session.add(WindowVerdictRow(goal_name=state.goal_name, adapter_digest=state.adapter_digest, index=index,
                                 drifted=verdict.drifted, drift_share=verdict.drift_share, verdict_digest=verdict_ref.digest,
                                 verdict_uri=verdict_ref.uri, report_digest="", report_uri="", span_ms=span_ms, drift_ms=drift_ms))
    if opened is not None or index % deps.report_every == 0:
        payload: dict[str, object] = {
            "goal": state.goal_name, "adapter": state.adapter_digest, "index": index, "window": window_ref.digest,
            "window_uri": window_ref.uri, "reference": ref_row.table_digest, "reference_uri": ref_row.table_uri,
            "incident": state.incident_id if verdict.drifted else "", "source_event": inc.id, "traceparent": inc.traceparent}
        kind = REPORT_JOB
        if opened is not None:
            out += opened.rollback
            payload |= {"drift": opened.drift.SerializeToString().hex(), "alert": opened.alert.__dict__}
            kind = INCIDENT_JOB
        enqueue_job(session, kind, f"{state.goal_name}/{state.adapter_digest}/{index}", json.dumps(payload), inc.traceparent)
    return out


def _breaches(inc: Incoming[ev.InferenceLogged], session: Session, state: DriftStateRow, health: alerts.ServingHealth,
              spec: RollbackSpec, auto: bool, now_ms: int) -> list[Outgoing | alerts.Alert]:
    breached = health.error_breach or health.latency_breach
    # One alert per breach episode: alert when it starts, stay quiet until a healthy window ends it. A
    # breach on a canary or a recently promoted champion also asks for a rollback, as drift does.
    found = alerts.breach_alerts(state.goal_name, state.adapter_digest, health, spec.error_rate, spec.latency_p99_ms)
    out: list[Outgoing | alerts.Alert] = []
    if breached and not state.breach_open:
        what = " and ".join(a.kind.replace("_", " ") for a in found)
        numbers = {"error_rate": health.error_rate, "latency_p99_ms": health.latency_p99_ms, "requests": float(health.requests)}
        asked = rollback_for(session, state.goal_name, state.adapter_digest, inc.message, spec, auto, now_ms, what, numbers)
        out += [*asked.requests, *(replace(a, details=f"{a.details}; {asked.reason}") for a in found)]
    if state.breach_open and not breached and not _others_open(session, state, DriftStateRow.breach_open.is_(True)):
        out.append(alerts.Alert("serving_recovered", "info", state.goal_name,
                                f"errors and latency back within limits on adapter {state.adapter_digest[:19]}",
                                adapter=state.adapter_digest))
    state.breach_open = breached
    return out


def _others_open(session: Session, state: DriftStateRow, condition: sa.ColumnElement[bool]) -> bool:
    """Whether another adapter of the goal still has the condition (the goal's alert incident stays open then)."""
    query = sa.select(sa.func.count()).select_from(DriftStateRow).where(
        DriftStateRow.goal_name == state.goal_name, DriftStateRow.adapter_digest != state.adapter_digest, condition)
    return bool(session.scalar(query))


def verdict_json(verdict: WindowVerdict, window_digest: str) -> bytes:
    """A verdict as canonical-ish JSON (sorted keys): what was tested, what drifted, on which rows."""
    body = {"drifted": verdict.drifted, "drift_share": verdict.drift_share, "threshold": verdict.threshold,
            "rows": verdict.rows, "correction": verdict.correction, "window": window_digest,
            "columns": [c.__dict__ for c in verdict.columns]}
    return json.dumps(body, sort_keys=True).encode()


def _store_window(deps: WindowDeps, verdict: WindowVerdict, window: pd.DataFrame) -> tuple[ev.ArtifactRef, ev.ArtifactRef]:
    buf = io.BytesIO()
    window.to_parquet(buf, index=False)
    window_ref = deps.blobs.put_bytes(buf.getvalue(), PARQUET)
    return deps.blobs.put_bytes(verdict_json(verdict, window_ref.digest), "application/json"), window_ref


@dataclass(frozen=True)
class OpenedIncident:
    """What a window that opened a drift incident decided: the rollback request (now), the event and alert (after the report)."""

    rollback: list[Outgoing | alerts.Alert]
    drift: ev.DriftDetected
    alert: alerts.Alert


def _decide(inc: Incoming[ev.InferenceLogged], session: Session, state: DriftStateRow, spec: RollbackSpec, auto: bool,
            verdict: WindowVerdict, verdict_ref: ev.ArtifactRef, rows: list[WindowRow]) -> OpenedIncident | None:
    deployment = _deployment(session.get(DeploymentRow, (state.goal_name, state.adapter_digest)), inc.message)
    last = _last_rollback_ms(session, state.goal_name)
    policy = incidents.RollbackPolicy(spec.drift_windows, spec.cooldown_seconds, spec.recent_promotion_seconds, auto)
    now_ms = max(r.served_at_ms for r in rows)
    before = incidents.DriftState(state.consecutive, state.incident_id, state.windows)
    decision = incidents.decide(before, verdict.drifted, policy, deployment, now_ms, last, uuid7())
    state.consecutive, state.incident_id, state.windows = decision.state.consecutive, decision.state.incident_id, decision.state.windows
    if before.incident_id and not state.incident_id and not _others_open(session, state, DriftStateRow.incident_id != ""):
        # A clean window closes the incident. Queued behind the incident's own job, so its resolve never
        # overtakes the drift alert that job emits.
        cleared = alerts.Alert("drift_cleared", "info", state.goal_name,
                               f"drift on adapter {state.adapter_digest[:19]} ended: a clean window", adapter=state.adapter_digest)
        payload = {"cleared": cleared.__dict__, "goal": state.goal_name, "source_event": inc.id, "traceparent": inc.traceparent}
        enqueue_job(session, INCIDENT_JOB, f"{state.goal_name}/{state.adapter_digest}/{state.windows}/cleared",
                    json.dumps(payload), inc.traceparent)
    if not decision.opened:
        return None
    return _incident_events(session, state, verdict, verdict_ref, decision, deployment, now_ms)


def _deployment(row: DeploymentRow | None, m: ev.InferenceLogged | None) -> incidents.Deployment | None:
    if row is not None:
        # The store holds only the roles handlers._set_role writes (canary, champion, retired).
        return incidents.Deployment(row.deployment_id, row.adapter_digest, cast(incidents.Role, row.role), row.promoted_at_ms)
    if m is not None and m.variant == "canary":  # no deployment event seen (yet): trust the serving variant
        return incidents.Deployment(m.deployment_id, m.adapter_digest, "canary")
    return None


@dataclass(frozen=True)
class RollbackAsked:
    """What an incident on an adapter decided: the rollback request (none when a person decides) and why."""

    requests: list[Outgoing]
    reason: str
    incident_id: str


def rollback_for(session: Session, goal: str, adapter: str, logged: ev.InferenceLogged | None, spec: RollbackSpec, auto: bool,
                 now_ms: int, what: str, numbers: dict[str, float]) -> RollbackAsked:
    """The rollback request for an incident (`what`: an error-rate or latency breach, an accuracy drop) on
    an adapter, when the adapter is a canary or a recently promoted champion, the goal allows it and the
    goal's cooldown has passed; else no request, and the reason a person decides (incidents.rollback_or_escalate)."""
    deployment = _deployment(session.get(DeploymentRow, (goal, adapter)), logged)
    policy = incidents.RollbackPolicy(spec.drift_windows, spec.cooldown_seconds, spec.recent_promotion_seconds, auto)
    action, reason = incidents.rollback_or_escalate(policy, deployment, now_ms, _last_rollback_ms(session, goal), what)
    incident_id = uuid7()
    if action != "rollback":
        return RollbackAsked([], f"a person decides: {reason}", incident_id)
    dep_id = deployment.deployment_id if deployment else ""
    session.add(RollbackRow(incident_id=incident_id, goal_name=goal, adapter_digest=adapter, requested_at_ms=now_ms))
    request = ev.RollbackRequested(goal_name=goal, adapter_digest=adapter, deployment_id=dep_id, reason=reason,
                                   incident_id=incident_id, requested_by="monitor", numbers=numbers)
    return RollbackAsked([Outgoing(request, goal)], f"rollback requested: {reason}", incident_id)


def _last_rollback_ms(session: Session, goal: str) -> int:
    last = sa.select(sa.func.max(RollbackRow.requested_at_ms)).where(RollbackRow.goal_name == goal)
    return session.execute(last).scalar() or 0


def _incident_events(session: Session, state: DriftStateRow, verdict: WindowVerdict, verdict_ref: ev.ArtifactRef,
                     decision: incidents.Decision, deployment: incidents.Deployment | None, now_ms: int) -> OpenedIncident:
    columns = [ev.ColumnDrift(column=c.column, test=c.test, statistic=c.statistic, p_value=c.adjusted_p, drifted=c.drifted)
               for c in verdict.columns]
    dep_id = deployment.deployment_id if deployment else ""
    drift = ev.DriftDetected(goal_name=state.goal_name, adapter_digest=state.adapter_digest, deployment_id=dep_id,
                             drift_share=verdict.drift_share, consecutive_windows=decision.state.consecutive, columns=columns,
                             verdict=verdict_ref, incident_id=state.incident_id, window_index=state.windows - 1,
                             correction=verdict.correction)
    out: list[Outgoing | alerts.Alert] = []
    if decision.action == "rollback":
        session.add(RollbackRow(incident_id=state.incident_id, goal_name=state.goal_name,
                                adapter_digest=state.adapter_digest, requested_at_ms=now_ms))
        out.append(Outgoing(ev.RollbackRequested(
            goal_name=state.goal_name, adapter_digest=state.adapter_digest, deployment_id=dep_id, reason=decision.reason,
            incident_id=state.incident_id, requested_by="monitor",
            numbers={"drift_share": verdict.drift_share, "consecutive_windows": float(decision.state.consecutive)}), state.goal_name))
    # One drift alert either way (its incident resolves when the goal's rollback completes); its words say
    # whether a rollback was asked for or a person must decide. It links the verdict until the report exists.
    alert = alerts.drift_alert(state.goal_name, state.adapter_digest, verdict.drift_share, decision.state.consecutive,
                               decision.action, decision.reason, verdict_ref.uri)
    return OpenedIncident(out, drift, alert)
