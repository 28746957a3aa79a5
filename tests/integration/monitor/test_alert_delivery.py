"""Alert delivery to a real HTTP sink on loopback: once, with its resolve, and after the sink comes back."""

from __future__ import annotations

import time

import jsonschema
import pytest

from services.kernel.settings import Settings
from services.kernel.store import Store
from services.monitor import alerting
from services.monitor.domain.alerts import Alert
from services.monitor.store import MIGRATIONS, AlertDeliveryRow
from tests.support import ALERTMANAGER_SCHEMA as SCHEMA
from tests.support import AlertSink as Sink
from tests.support import free_ports, local_metrics, metric_total

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path):
    s = Store.open(Settings(state_dir=tmp_path), "monitor", MIGRATIONS)
    yield s
    s.dispose()


def poll(until, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def drift(store: Store, sinks: list[alerting.Sink]) -> None:
    with store.session() as s:
        alerting.raise_alert(s, Alert("drift", "critical", "banking77", "drift share 0.8", "3 windows", "file:///r.html"),
                             "a-1", sinks)


def test_the_sink_receives_the_alert_once_and_its_resolve(store):
    sink = Sink()
    sinks = alerting.sinks_from([sink.url], [])
    sender = alerting.AlertSender(store, every_s=0.1)
    sender.start()
    try:
        for _ in range(3):
            drift(store, sinks)
        poll(lambda: len(sink.received) == 1, 20, "the firing message arrives")
        with store.session() as s:
            alerting.resolve_incidents(s, ["drift:banking77"], sinks)
        poll(lambda: len(sink.received) == 2, 20, "the resolve arrives")
        for message in sink.received:
            jsonschema.validate(message, SCHEMA)
        assert [m["status"] for m in sink.received] == ["firing", "resolved"]
        assert sink.received[0]["alerts"][0]["annotations"]["alerts"] == "3", "three alerts, one message"
        assert sender.send_due() == 0, "nothing left to send"
    finally:
        sender.stop()
        sink.close()
    assert len(sink.received) == 2


def test_with_the_sink_down_for_30_s_the_alert_arrives_once_after_it_comes_back(store):
    local_metrics()
    [port] = free_ports(1)
    sinks = alerting.sinks_from([f"http://127.0.0.1:{port}/hook"], [])
    failed_before = metric_total(local_metrics(), "tuneline_alerts_deliveries_total", outcome="failed")
    sender = alerting.AlertSender(store, every_s=0.2, timeout_s=1.0, retry_cap_s=4.0)
    sender.start()
    sink = None
    try:
        drift(store, sinks)
        down_until = time.monotonic() + 30
        poll(lambda: time.monotonic() >= down_until, 40, "30 s of a sink that refuses connections")
        failed = metric_total(local_metrics(), "tuneline_alerts_deliveries_total", outcome="failed") - failed_before
        assert failed >= 3, f"the sender kept retrying while the sink was down ({failed} failed attempts counted)"
        sink = Sink(port)
        poll(lambda: len(sink.received) == 1, 20, "the alert arrives once the sink is back")
        # Counted again now: the sender may have tried once more while the sink was binding its port.
        failed = metric_total(local_metrics(), "tuneline_alerts_deliveries_total", outcome="failed") - failed_before
        with store.session() as s:
            [row] = s.query(AlertDeliveryRow).all()
            assert row.delivered_ms is not None and row.attempts == failed + 1, "every failed attempt counted"
        assert sender.send_due() == 0
        assert len(sink.received) == 1, "exactly once"
        jsonschema.validate(sink.received[0], SCHEMA)
    finally:
        sender.stop()
        if sink:
            sink.close()
