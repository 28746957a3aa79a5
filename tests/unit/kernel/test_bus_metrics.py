"""The bus's instruments as Prometheus reads them: per processed batch, per dead letter, and the relay's backlog gauge.

A real SQLite store and a recording producer (no Kafka); counters are process-wide, so each test compares
a scrape taken before the action with one taken after.
"""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.bus.consumer import EventProcessor, RawRecord, Subscription
from services.kernel.errors import TransientError
from services.kernel.events import Incoming, Outgoing, Record, encode
from services.kernel.outbox import OutboxRelay, emit
from services.kernel.settings import Settings
from services.kernel.store import Store
from tests.support import local_metrics, metric_total, signed


class RecordingProducer:
    """Stands in for the Kafka producer: keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[Record] = []

    def send(self, records: list[Record], timeout_s: float = 30.0) -> None:
        self.sent.extend(records)


class AbsentBroker:
    """A producer whose broker never answers: the outbox rows stay unsent."""

    def __init__(self) -> None:
        self.tried = threading.Event()

    def send(self, records: list[Record], timeout_s: float = 30.0) -> None:
        self.tried.set()
        raise TransientError("broker away")


def _raw(settings: Settings, name: str, offset: int) -> RawRecord:
    rec = signed(settings, encode(Outgoing(ev.GoalApplied(goal_name=name), name), topic=settings.topic("goal.applied"), source="test"))
    return RawRecord(rec.topic, 0, offset, rec.key, rec.value, rec.headers)


def _processor(settings: Settings, consumer: str) -> EventProcessor:
    def handler(_inc: Incoming[ev.GoalApplied], _s: Session) -> None:
        return None

    return EventProcessor(Subscription("goal.applied", handler, consumer), Store.open(settings, "unit"), settings,
                          RecordingProducer(), "unit/1")  # type: ignore[arg-type]


def test_a_consumer_exports_its_counters_at_zero_and_times_one_batch_as_one(offline_settings: Settings) -> None:
    local_metrics()
    proc = _processor(offline_settings, "batched")
    labels = {"consumer": "batched", "event": "goal.applied"}
    before = local_metrics()
    assert "tuneline_bus_dead_letters_total{consumer=batched,event=goal.applied}" in before, "exported before any dead letter"
    assert "tuneline_bus_retries_total{consumer=batched,event=goal.applied}" in before

    proc.process([_raw(offline_settings, f"g{i}", i) for i in range(3)])
    after = local_metrics()
    attrs = {"messaging_consumer_group_name": offline_settings.group("batched"),
             "messaging_destination_name": offline_settings.topic("goal.applied")}
    duration = "messaging_process_duration_seconds_count"
    assert metric_total(after, duration, **attrs) - metric_total(before, duration, **attrs) == 1, "one transaction, one sample"
    assert metric_total(after, "tuneline_bus_retries_total", **labels) == metric_total(before, "tuneline_bus_retries_total", **labels)


def test_a_record_that_does_not_decode_is_counted_as_a_dead_letter_and_not_as_processed(offline_settings: Settings) -> None:
    local_metrics()
    proc = _processor(offline_settings, "undecodable")
    labels = {"consumer": "undecodable", "event": "goal.applied"}
    group = {"messaging_consumer_group_name": offline_settings.group("undecodable")}
    before = local_metrics()
    proc.process([RawRecord(offline_settings.topic("goal.applied"), 0, 7, b"k", b"\x00garbage", [("x", b"y")])])
    after = local_metrics()

    assert proc.dead_lettered == 1
    dead = "tuneline_bus_dead_letters_total"
    assert metric_total(after, dead, **labels) - metric_total(before, dead, **labels) == 1
    duration = "messaging_process_duration_seconds_count"
    assert metric_total(after, duration, **group) == metric_total(before, duration, **group), "nothing reached a transaction"


def test_the_backlog_gauge_reads_a_running_relay_and_is_gone_once_it_stops(offline_settings: Settings) -> None:
    local_metrics()
    store = Store.open(offline_settings, "unit-backlog")
    with store.session() as s:
        for i in range(3):
            emit(s, Outgoing(ev.AlertRaised(summary=str(i)), "g"))
    producer = AbsentBroker()
    relay = OutboxRelay(store, offline_settings, "unit/1", producer)  # type: ignore[arg-type]
    assert "tuneline_bus_outbox_backlog{}" not in local_metrics(), "no relay started, no gauge"

    relay.start()
    try:
        assert producer.tried.wait(10), "the relay tried to publish"
        assert local_metrics()["tuneline_bus_outbox_backlog{}"] == 3
    finally:
        relay.stop()
    assert "tuneline_bus_outbox_backlog{}" not in local_metrics(), "a stopped relay is not read"
