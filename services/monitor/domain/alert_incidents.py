"""Alert incidents: alerts grouped so that people are told once, and told again when it is over.

An ongoing condition of a goal (drift, an error-rate or a latency breach) is one incident, keyed
`kind:goal`, however many windows repeat it; it resolves when the goal's rollback completes (the
adapter at fault no longer serves), or when the monitor says the condition ended: a clean window
closes the drift incident (`drift_cleared`), a healthy one the breaches (`serving_recovered`). Those
two alerts only resolve: nobody is told of them but by the resolve message. Every other alert (a rejected dataset, a failed run or gate, a
dead letter, a forged decision, a rollback requested or done) is an incident of its own, keyed by its
alert id, delivered once as firing and closed at once: there is nothing to wait for.

The payloads are those receivers already parse: Alertmanager's webhook message (version 4, so any
Alertmanager-compatible receiver takes it) and Slack's incoming-webhook message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ONGOING = frozenset({"drift", "error_rate", "latency", "accuracy"})
Status = Literal["firing", "resolved"]
NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's "no end time"
_SLACK_MARK = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


@dataclass(frozen=True)
class Incident:
    """What people are told about: the first alert's words, how often it repeated, when it opened and closed."""

    key: str
    kind: str
    goal: str
    severity: str
    summary: str
    details: str
    report_uri: str
    trace_id: str
    alerts: int
    opened_ms: int
    resolved_ms: int | None

    @property
    def status(self) -> Status:
        """firing while open, resolved once closed."""
        return "firing" if self.resolved_ms is None else "resolved"


def incident_key(kind: str, goal: str, alert_id: str) -> str:
    """The incident an alert belongs to: one per goal for an ongoing condition, else the alert itself."""
    return f"{kind}:{goal}" if kind in ONGOING else alert_id


def is_ongoing(kind: str) -> bool:
    """Whether an incident of this kind stays open until something resolves it."""
    return kind in ONGOING


CLEARS = {"drift_cleared": ("drift",), "serving_recovered": ("error_rate", "latency"), "accuracy_recovered": ("accuracy",)}


def resolved_by(kind: str, goal: str) -> list[str] | None:
    """The incidents an alert of `kind` resolves when it only says a condition ended; None for any other alert."""
    return [f"{k}:{goal}" for k in CLEARS[kind]] if kind in CLEARS else None


def resolved_by_rollback(goal: str) -> list[str]:
    """The incidents a completed rollback of `goal` closes: the adapter they were about no longer serves."""
    return [f"{kind}:{goal}" for kind in sorted(ONGOING)]


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(key: str) -> str:
    """A stable 16-hex id of an incident, as Alertmanager fingerprints alerts."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def alertmanager_message(incident: Incident, status: Status, receiver: str, external_url: str = "") -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) for one incident, firing or resolved."""
    labels = {"alertname": f"tuneline_{incident.kind}", "kind": incident.kind, "goal": incident.goal,
              "severity": incident.severity}
    annotations = {"summary": incident.summary, "description": incident.details, "report": incident.report_uri,
                   "trace_id": incident.trace_id, "alerts": str(incident.alerts)}
    annotations = {k: v for k, v in annotations.items() if v}
    alert = {"status": status, "labels": labels, "annotations": annotations, "startsAt": _rfc3339(incident.opened_ms),
             "endsAt": _rfc3339(incident.resolved_ms) if status == "resolved" and incident.resolved_ms else NEVER,
             "generatorURL": external_url, "fingerprint": fingerprint(incident.key)}
    return {"version": "4", "groupKey": f"{{}}:{{incident={incident.key!r}}}", "truncatedAlerts": 0, "status": status,
            "receiver": receiver, "groupLabels": {"incident": incident.key}, "commonLabels": labels,
            "commonAnnotations": annotations, "externalURL": external_url, "alerts": [alert]}


def slack_message(incident: Incident, status: Status) -> dict[str, Any]:
    """A Slack incoming-webhook message for one incident, firing or resolved."""
    mark = ":white_check_mark:" if status == "resolved" else _SLACK_MARK.get(incident.severity, "")
    head = f"{mark} *{'RESOLVED' if status == 'resolved' else incident.severity.upper()}* {incident.summary}".strip()
    lines = [head, f"goal `{incident.goal}` · {incident.kind} · {incident.alerts} alert(s)"]
    lines += [incident.details] if incident.details else []
    lines += [f"report: {incident.report_uri}"] if incident.report_uri else []
    lines += [f"trace: `tuneline trace {incident.trace_id}`"] if incident.trace_id else []
    return {"text": "\n".join(lines)}
