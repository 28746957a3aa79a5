"""Alert delivery: incidents opened and closed in the monitor's transactions, delivered to people's sinks.

`raise_alert` runs inside the handler's transaction that emits `alert.raised`: it opens the alert's
incident (or counts one more alert of an open one) and, for a new incident, queues one delivery per
configured sink in the same transaction, so an alert the bus accepted is never lost and a repeated one
is never delivered twice. `resolve_incidents` closes incidents and queues their resolve messages the
same way. `AlertSender` (a thread of the monitor) posts what is due: Alertmanager's webhook payload to
each `monitor_alert_webhooks` URL, Slack's to each `monitor_alert_slack_webhooks` URL; a sink that
fails is retried with the kernel's jittered backoff (capped at `monitor_alert_retry_cap_s`) until it
answers 2xx or `monitor_alert_give_up_s` has passed, each failure counted in
`tuneline.alerts.deliveries{outcome="failed"}`. A delivery is leased while it is posted, so two
monitor replicas never post it twice; a crash after the post and before the mark re-sends it (at
least once: Alertmanager drops the repeat by fingerprint).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import ConfigError
from services.kernel.events import Incoming, Outgoing
from services.kernel.metrics import Attributes, GaugeSet, meter
from services.kernel.periodic import Periodic
from services.kernel.retry import RetryPolicy
from services.kernel.store import Store
from services.monitor.domain.alert_incidents import (
    Incident,
    Status,
    alertmanager_message,
    incident_key,
    is_ongoing,
    resolved_by,
    resolved_by_rollback,
    slack_message,
)
from services.monitor.domain.alerts import Alert, Severity
from services.monitor.store import AlertDeliveryRow, DeploymentRow, IncidentRow

log = logging.getLogger(__name__)
RECEIVER = "tuneline"
LEASE_S = 30.0
DELIVERIES = meter().create_counter("tuneline.alerts.deliveries", unit="{delivery}",
                                    description="Alert deliveries to sinks, by sink kind and outcome")
PENDING = GaugeSet("tuneline.alerts.pending", "{delivery}", "Alert deliveries not yet accepted by their sink")
OPEN = GaugeSet("tuneline.alerts.incidents.open", "{incident}", "Incidents open now")


@dataclass(frozen=True)
class Sink:
    """Where deliveries go: an Alertmanager-compatible webhook or a Slack incoming webhook."""

    kind: str  # "webhook" | "slack"
    url: str


def sinks_from(webhooks: Iterable[str], slack: Iterable[str]) -> list[Sink]:
    """The configured sinks; ConfigError for a URL that is not http(s) (no file:, no ftp:, no relative path)."""
    out = [Sink("webhook", u) for u in webhooks] + [Sink("slack", u) for u in slack]
    for sink in out:
        if not sink.url.startswith(("http://", "https://")) or len(sink.url) > 2000:
            raise ConfigError(f"alert sink {sink.url[:80]!r} is not an http(s) URL",
                              hint="set TUNELINE_MONITOR_ALERT_WEBHOOKS / ..._SLACK_WEBHOOKS to JSON lists of http(s) URLs")
    return out


def _incident(row: IncidentRow) -> Incident:
    return Incident(row.key, row.kind, row.goal_name, row.severity, row.summary, row.details, row.report_uri,
                    row.trace_id, row.alerts, row.opened_ms, row.resolved_ms)


def _queue(session: Session, key: str, status: Status, sinks: list[Sink], now_ms: int) -> None:
    for sink in sinks:
        session.add(AlertDeliveryRow(incident_key=key, status=status, sink_kind=sink.kind, sink_url=sink.url,
                                     created_ms=now_ms, next_ms=now_ms, attempts=0))


def raise_alert(session: Session, alert: Alert, alert_id: str, sinks: list[Sink], now_ms: int | None = None) -> bool:
    """Open the alert's incident (True: new, deliveries queued) or count it in the open one (False)."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    key = incident_key(alert.kind, alert.goal_name, alert_id)
    row = session.get(IncidentRow, key)
    if row is not None and (row.resolved_ms is None or not is_ongoing(alert.kind)):
        row.alerts += 1  # the same condition again, or the same alert redelivered: nobody is told twice
        return False
    if row is None:
        row = IncidentRow(key=key, kind=alert.kind, goal_name=alert.goal_name)
        session.add(row)
    row.severity, row.summary, row.details = alert.severity, alert.summary[:1000], alert.details[:4000]
    row.report_uri, row.trace_id, row.alerts, row.opened_ms = alert.report_uri, alert.trace_id, 1, now_ms
    row.resolved_ms = None if is_ongoing(alert.kind) else now_ms
    _queue(session, key, "firing", sinks, now_ms)
    return True


def resolve_incidents(session: Session, keys: Iterable[str], sinks: list[Sink], now_ms: int | None = None) -> list[str]:
    """Close the open incidents among `keys` and queue their resolve messages; the keys closed."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    closed = []
    for key in keys:
        row = session.get(IncidentRow, key)
        if row is not None and row.resolved_ms is None:
            row.resolved_ms = now_ms
            _queue(session, key, "resolved", sinks, now_ms)
            closed.append(key)
    return closed


def incidents(session: Session, limit: int = 50, open_only: bool = False) -> list[Incident]:
    """Open incidents first, then the most recently opened."""
    query = sa.select(IncidentRow).order_by(IncidentRow.resolved_ms.is_not(None), IncidentRow.opened_ms.desc()).limit(limit)
    if open_only:
        query = query.where(IncidentRow.resolved_ms.is_(None))
    return [_incident(r) for r in session.scalars(query).all()]


def delivery_counts(session: Session, keys: list[str]) -> dict[str, tuple[int, int]]:
    """Per incident: deliveries not yet accepted, and failed attempts so far (over every sink)."""
    pending = sa.func.sum(sa.case((AlertDeliveryRow.delivered_ms.is_(None), 1), else_=0))
    failed = sa.func.sum(AlertDeliveryRow.attempts - sa.case((AlertDeliveryRow.delivered_ms.is_(None), 0), else_=1))
    rows = session.execute(sa.select(AlertDeliveryRow.incident_key, pending, failed)
                           .where(AlertDeliveryRow.incident_key.in_(keys)).group_by(AlertDeliveryRow.incident_key)).all()
    return {key: (int(p or 0), int(f or 0)) for key, p, f in rows}


def on_alert_raised(inc: Incoming[ev.AlertRaised], session: Session, sinks: list[Sink]) -> list[Outgoing]:
    """Open (or count into) the alert's incident; a completed rollback first resolves its goal's ongoing incidents.

    alert.raised is keyed by goal, so a goal's drift alert and the alert of the rollback it caused are on
    one partition, in that order: the resolve always finds the incident it closes.
    """
    m = inc.message
    at_ms = int(inc.time.timestamp() * 1000)
    if m.source_event_type == "deployment.rolled_back" and m.goal_name:
        resolve_incidents(session, resolved_by_rollback(m.goal_name), sinks, at_ms)
    ended = resolved_by(m.kind, m.goal_name)
    if ended is not None:  # the condition is over: its incident resolves, nothing new opens
        resolve_incidents(session, ended, sinks, at_ms)
        return []
    severity = m.severity if m.severity in ("info", "warning", "critical") else "critical"
    alert = Alert(m.kind or "unknown", cast(Severity, severity), m.goal_name, m.summary, m.details, m.report_uri, m.trace_id,
                  m.adapter_digest)
    raise_alert(session, alert, m.alert_id or inc.id, sinks, at_ms)
    if is_ongoing(alert.kind) and _no_longer_serves(session, alert.goal_name, alert.adapter):
        # Raised after its adapter left traffic (a drift alert waits for its report; the rollback may be
        # quicker): people are told of it and, at once, that it is over.
        resolve_incidents(session, [incident_key(alert.kind, alert.goal_name, "")], sinks, at_ms)
    return []


def _no_longer_serves(session: Session, goal: str, adapter: str) -> bool:
    # The role is set by the monitor's deployment.* handlers, the rollback's alert in the same transaction:
    # either this sees the rollback, or the rollback's alert comes after this one and resolves it.
    row = session.get(DeploymentRow, (goal, adapter)) if adapter else None
    return row is not None and row.role == "retired"


def payload(incident: Incident, status: Status, kind: str) -> bytes:
    """The JSON body a sink of `kind` is sent."""
    body = alertmanager_message(incident, status, RECEIVER) if kind == "webhook" else slack_message(incident, status)
    return json.dumps(body).encode()


class AlertSender:
    """Posts due deliveries every `every_s` seconds; one lease per delivery across replicas."""

    def __init__(self, store: Store, every_s: float = 1.0, timeout_s: float = 5.0, retry_cap_s: float = 30.0,
                 give_up_s: float = 86_400.0) -> None:
        self.store, self.timeout_s, self.give_up_s = store, timeout_s, give_up_s
        self.policy = RetryPolicy(attempts=1_000_000, base_s=1.0, cap_s=retry_cap_s)
        self._periodic = Periodic(self.send_due, every_s, "alert-sender")
        self._removers: list[Callable[[], None]] = []

    def start(self) -> None:
        """Start posting (and exporting the pending and open gauges, and every outcome's counter from zero)."""
        for sink in ("webhook", "slack"):
            for outcome in ("delivered", "failed", "given_up"):
                DELIVERIES.add(0, {"sink": sink, "outcome": outcome})
        self._removers = [PENDING.add(self._pending), OPEN.add(self._open)]
        self._periodic.start()

    def stop(self) -> None:
        """Stop after the post in progress."""
        self._periodic.stop()
        for remove in self._removers:
            remove()

    def _pending(self) -> list[tuple[float, Attributes]]:
        with self.store.session() as s:
            n = s.scalar(sa.select(sa.func.count()).select_from(AlertDeliveryRow)
                         .where(AlertDeliveryRow.delivered_ms.is_(None), AlertDeliveryRow.given_up.is_(False)))
        return [(float(n or 0), {})]

    def _open(self) -> list[tuple[float, Attributes]]:
        with self.store.session() as s:
            n = s.scalar(sa.select(sa.func.count()).select_from(IncidentRow).where(IncidentRow.resolved_ms.is_(None)))
        return [(float(n or 0), {})]

    def send_due(self, now_ms: int | None = None) -> int:
        """Post every delivery that is due now (leasing each first); how many a sink accepted."""
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        with self.store.session() as s:
            due = s.scalars(sa.select(AlertDeliveryRow.id).where(
                AlertDeliveryRow.delivered_ms.is_(None), AlertDeliveryRow.given_up.is_(False),
                AlertDeliveryRow.next_ms <= now_ms).order_by(AlertDeliveryRow.id).limit(100)).all()
        return sum(self._deliver(i, now_ms) for i in due)

    def _lease(self, delivery_id: int, now_ms: int) -> tuple[AlertDeliveryRow, Incident] | None:
        with self.store.session() as s:
            taken = s.execute(sa.update(AlertDeliveryRow).where(
                AlertDeliveryRow.id == delivery_id, AlertDeliveryRow.delivered_ms.is_(None),
                AlertDeliveryRow.next_ms <= now_ms).values(next_ms=now_ms + int(LEASE_S * 1000)))
            if getattr(taken, "rowcount", 0) != 1:
                return None  # another replica leased it, or it was delivered meanwhile
            row = s.get(AlertDeliveryRow, delivery_id)
            incident = s.get(IncidentRow, row.incident_key) if row else None
            if row is None or incident is None:
                return None
            s.expunge(row)
            return row, _incident(incident)

    def _deliver(self, delivery_id: int, now_ms: int) -> bool:
        leased = self._lease(delivery_id, now_ms)
        if leased is None:
            return False
        row, incident = leased
        error = self._post(row.sink_url, payload(incident, row.status, row.sink_kind))  # type: ignore[arg-type]
        with self.store.session() as s:
            live = s.get(AlertDeliveryRow, delivery_id)
            assert live is not None
            live.attempts += 1
            if error is None:
                live.delivered_ms = int(time.time() * 1000)
            else:
                live.last_error = error[:500]
                live.given_up = now_ms - live.created_ms >= self.give_up_s * 1000
                live.next_ms = now_ms + int(self.policy.delay(live.attempts) * 1000)
        outcome = "delivered" if error is None else "given_up" if live.given_up else "failed"
        DELIVERIES.add(1, {"sink": row.sink_kind, "outcome": outcome})
        if error is not None:
            log.warning("alert %s (%s) to %s sink failed (attempt %d): %s", incident.key, row.status, row.sink_kind,
                        live.attempts, error)
        return error is None

    def _post(self, url: str, body: bytes) -> str | None:
        """POST the JSON body; None when the sink accepted it (2xx), else what went wrong."""
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                return None if 200 <= reply.status < 300 else f"HTTP {reply.status}"
        except urllib.error.HTTPError as err:
            return f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            return str(err)
