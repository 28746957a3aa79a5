"""Alert incidents: one per ongoing condition, resolved by the goal's rollback; payloads receivers parse."""

import jsonschema
import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.monitor import alerting
from services.monitor.domain.alert_incidents import Incident, alertmanager_message, slack_message
from services.monitor.domain.alerts import Alert
from services.monitor.store import AlertDeliveryRow, IncidentRow
from tests.support import ALERTMANAGER_SCHEMA as SCHEMA

SINKS = alerting.sinks_from(["http://127.0.0.1:9/hook"], ["https://hooks.slack.test/T/B/x"])


def raised(make_incoming, kind, goal="banking77", source_type="inference.logged", at_s=0.0, severity="critical"):
    msg = ev.AlertRaised(alert_id=f"a-{kind}-{at_s}", severity=severity, goal_name=goal, summary=f"{kind} on {goal}",
                         details="3 windows", kind=kind, source_event_type=source_type, report_uri="file:///r.html",
                         trace_id="ab" * 16)
    return make_incoming(msg, subject=goal, at_s=at_s)


def deliveries(store):
    with store.session() as s:
        return [(d.incident_key, d.status, d.sink_kind) for d in s.query(AlertDeliveryRow).order_by(AlertDeliveryRow.id)]


def handle(store, inc):
    with store.session() as s:
        alerting.on_alert_raised(inc, s, SINKS)


def test_a_repeated_drift_alert_is_one_incident_delivered_once_and_resolved_by_the_rollback(store, make_incoming):
    for i in range(3):
        handle(store, raised(make_incoming, "drift", at_s=i))
    assert deliveries(store) == [("drift:banking77", "firing", "webhook"), ("drift:banking77", "firing", "slack")]
    handle(store, raised(make_incoming, "rollback", source_type="deployment.rolled_back", at_s=10, severity="warning"))
    got = deliveries(store)
    assert got[2:4] == [("drift:banking77", "resolved", "webhook"), ("drift:banking77", "resolved", "slack")]
    assert len(got) == 6, "the rollback is an alert of its own (firing once per sink)"
    with store.session() as s:
        drift = s.get(IncidentRow, "drift:banking77")
        assert (drift.alerts, drift.resolved_ms is not None) == (3, True)
    handle(store, raised(make_incoming, "drift", at_s=20))
    assert deliveries(store)[6:] == [("drift:banking77", "firing", "webhook"), ("drift:banking77", "firing", "slack")], \
        "drift after the rollback is a new incident: people are told again"


def test_a_clean_window_resolves_the_drift_incident_and_a_healthy_one_the_breaches(store, make_incoming):
    for kind in ("drift", "error_rate", "latency"):
        handle(store, raised(make_incoming, kind))
    handle(store, raised(make_incoming, "drift_cleared", at_s=5, severity="info"))
    with store.session() as s:
        states = {r.key: r.resolved_ms is not None for r in s.query(IncidentRow)}
    assert states == {"drift:banking77": True, "error_rate:banking77": False, "latency:banking77": False}, \
        "the clear resolves its own incident and opens none"
    assert deliveries(store)[-2:] == [("drift:banking77", "resolved", "webhook"), ("drift:banking77", "resolved", "slack")]
    handle(store, raised(make_incoming, "serving_recovered", at_s=6, severity="info"))
    with store.session() as s:
        assert all(r.resolved_ms is not None for r in s.query(IncidentRow))
    assert len(deliveries(store)) == 12, "3 firing and 3 resolved, to each of 2 sinks: the clears are told only as resolves"


def test_a_redelivered_one_shot_alert_is_not_delivered_twice(store, make_incoming):
    inc = raised(make_incoming, "dataset_rejected", severity="warning")
    handle(store, inc)
    handle(store, inc)
    assert len(deliveries(store)) == 2


def test_a_rollback_of_another_goal_resolves_nothing(store, make_incoming):
    handle(store, raised(make_incoming, "drift", goal="a"))
    handle(store, raised(make_incoming, "rollback", goal="b", source_type="deployment.rolled_back"))
    with store.session() as s:
        assert s.get(IncidentRow, "drift:a").resolved_ms is None


def test_hostile_sink_urls_are_refused_at_start():
    for url in ("file:///etc/passwd", "ftp://x/y", "/relative", "gopher://h"):
        with pytest.raises(Exception, match="not an http"):
            alerting.sinks_from([url], [])


INCIDENT = Incident("drift:banking77", "drift", "banking77", "critical", "drift share 0.8", "3 windows", "file:///r.html",
                    "ab" * 16, 4, 1_764_763_200_000, None)


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_the_webhook_payload_validates_against_alertmanagers_schema(status):
    incident = INCIDENT if status == "firing" else Incident(**{**INCIDENT.__dict__, "resolved_ms": 1_764_763_260_000})
    message = alertmanager_message(incident, status, "tuneline")
    jsonschema.validate(message, SCHEMA)
    [alert] = message["alerts"]
    assert alert["labels"] == {"alertname": "tuneline_drift", "kind": "drift", "goal": "banking77", "severity": "critical"}
    assert alert["annotations"]["report"] == "file:///r.html" and alert["annotations"]["trace_id"] == "ab" * 16
    assert (alert["endsAt"] == "0001-01-01T00:00:00Z") == (status == "firing")
    assert alert["startsAt"] == "2025-12-03T12:00:00.000Z"


def test_the_slack_message_names_the_report_and_the_trace():
    text = slack_message(INCIDENT, "firing")["text"]
    assert "CRITICAL" in text and "file:///r.html" in text and "tuneline trace " + "ab" * 16 in text
    assert "RESOLVED" in slack_message(INCIDENT, "resolved")["text"]


def test_an_alert_opened_with_an_unknown_kind_still_reaches_people(store):
    with store.session() as s:
        assert alerting.raise_alert(s, Alert("unknown", "critical", "g", "x"), "id-1", SINKS, 0)
    assert len(deliveries(store)) == 2
