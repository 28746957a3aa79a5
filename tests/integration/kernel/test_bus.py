"""The bus through the real broker: delivery, the trace, redelivery after a crash (R3), poison (R11)."""

from __future__ import annotations

import signal
import sqlite3

import pytest
from confluent_kafka import Producer
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Outgoing, encode
from services.kernel.settings import Settings
from services.kernel.telemetry import continued_span, current_traceparent, setup_telemetry, trace_id_of
from tests.support import REPO, EventLog, publish_signed, signed, wait_for

pytestmark = pytest.mark.integration


def _effects(settings: Settings) -> list[tuple[str, str, str]]:
    db = settings.state_dir / "stores" / "probe.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("select event_id, goal_name, traceparent from probe_effects order by id").fetchall()
        except sqlite3.OperationalError:
            return []


def _outbox(settings: Settings) -> int:
    with sqlite3.connect(settings.state_dir / "stores" / "probe.db") as conn:
        count: int = conn.execute("select count(*) from tuneline_outbox").fetchone()[0]
        return count


def test_event_arrives_with_headers_payload_and_trace_continued(settings: Settings, probe) -> None:
    setup_telemetry("test", settings)
    probe()
    with continued_span("publish goal"):
        parent = current_traceparent()
        [sent_id] = publish_signed(settings, [Outgoing(ev.GoalApplied(goal_name="g1", goal_json="{}"), "g1")], "test/1")
    alerts = EventLog(settings, "alert.raised").wait(1, 90)
    effect = wait_for(lambda: _effects(settings), 10, "the probe's effect")
    assert effect[0][0] == sent_id and effect[0][1] == "g1"  # type: ignore[index]
    assert effect[0][2] == parent, "the consumer saw the producer's traceparent header"  # type: ignore[index]
    alert = alerts[0]
    assert alert.type == "alert.raised" and alert.subject == "g1" and alert.source.startswith("probe/")
    assert alert.message.alert_id == sent_id and alert.message.summary == "seen g1"
    assert trace_id_of(alert.traceparent) == trace_id_of(parent), "the trace continues through the consumer"
    assert alert.traceparent != parent, "the consumer adds its own span"
    assert not list(REPO.glob(f"{settings.group('probe')}*")), "the service wrote into its working directory"


def test_sigkill_after_commit_before_offset_commit_has_no_second_effect(settings: Settings, probe) -> None:
    """RELIABILITY.md R3: each restart dies right after one commit; 5 trials, effect once each."""
    n = 5
    sent = publish_signed(settings, [Outgoing(ev.GoalApplied(goal_name=f"g{i}"), "same-key") for i in range(n)], "test/1")
    for trial in range(n):
        proc = probe(TUNELINE_CRASH_AFTER_COMMIT="goal.applied")
        proc.wait(120)
        assert proc.returncode == -signal.SIGKILL, f"trial {trial}: the test hook should have killed the consumer"
        assert len(_effects(settings)) == trial + 1
    probe()
    alerts = EventLog(settings, "alert.raised")

    def all_alerts() -> bool:
        alerts.poll()
        return {a.message.alert_id for a in alerts.items} == set(sent)

    wait_for(all_alerts, 90, "an alert for every effect")
    effects = _effects(settings)
    assert [e[0] for e in effects] == sent, "each event had its effect once, in order"
    assert _outbox(settings) == n, "one outbox event per effect"
    # A kill between publishing an outbox row and marking it sent re-publishes it on restart: the log
    # may hold duplicates (at-least-once), but each carries its original ce_id for inboxes to absorb.
    assert len({a.id for a in alerts.items}) == n
    assert all(len({a.message.alert_id for a in alerts.items if a.id == ce}) == 1 for ce in {a.id for a in alerts.items})


def test_poison_messages_are_dead_lettered_and_the_good_ones_processed(settings: Settings, probe) -> None:
    """RELIABILITY.md R11: not protobuf, a wrong ce_type, a handler that always raises."""
    topic = settings.topic("goal.applied")
    good = [Outgoing(ev.GoalApplied(goal_name=f"ok{i}"), "k") for i in range(6)]
    template = encode(good[0], topic=topic, source="test")
    not_protobuf = [(k, v) for k, v in template.headers if k != "ce_id"] + [("ce_id", b"poison-bytes")]
    wrong_type = [(k, b"tuneline.run.finished.v1" if k == "ce_type" else v) for k, v in template.headers if k != "ce_id"]
    wrong_type.append(("ce_id", b"poison-type"))
    producer = Producer({"bootstrap.servers": settings.bootstrap, "enable.idempotence": True})
    for _i, out in enumerate(good[:3]):
        rec = signed(settings, encode(out, topic=topic, source="test"))
        producer.produce(topic, rec.value, b"k", headers=list(rec.headers))
    producer.produce(topic, b"\xff\x00not a protobuf\xff", b"k", headers=list(not_protobuf))
    producer.produce(topic, template.value, b"k", headers=list(wrong_type))
    raiser = signed(settings, encode(Outgoing(ev.GoalApplied(goal_name="raise-always"), "k"), topic=topic, source="test"))
    producer.produce(topic, raiser.value, b"k", headers=list(raiser.headers))
    for out in good[3:]:
        rec = signed(settings, encode(out, topic=topic, source="test"))
        producer.produce(topic, rec.value, b"k", headers=list(rec.headers))
    assert producer.flush(30) == 0
    probe()
    letters = EventLog(settings, "deadletter").wait(3, 120)
    wait_for(lambda: len(_effects(settings)) == 6, 30, "the six good events")
    assert [e[1] for e in _effects(settings)] == [f"ok{i}" for i in range(6)]
    by_error = {lt.message.error_type: lt.message for lt in letters}
    assert set(by_error) == {"DecodeError", "UnknownEventType", "RuntimeError"}
    assert by_error["DecodeError"].original_value == b"\xff\x00not a protobuf\xff"
    assert by_error["RuntimeError"].attempts == 1  # a bug is not retried (services.kernel.retry)
    assert all(lt.message.consumer == "probe" and lt.message.original_topic == topic for lt in letters)
    assert {h.key for h in by_error["UnknownEventType"].original_headers} >= {"ce_id", "ce_type", "ce_source"}


def test_a_record_dead_lettered_twice_is_one_dead_letter_event(settings: Settings) -> None:
    """A consumer killed between its dead-letter send and its offset commit gets the record again and
    dead-letters it again (as does a send retried after a lost acknowledgement): both letters carry one
    ce_id, which the monitor's inbox takes once (one alert, one ledger record). Another record, another id."""
    from services.kernel.bus.deadletter import dead_letter_record, send_dead_letter
    from services.kernel.bus.producer import EventProducer

    topic = settings.topic("goal.applied")

    def letter(offset: int) -> Outgoing:
        return dead_letter_record(settings, topic=topic, partition=0, offset=offset, key=b"k", value=b"\xffpoison", headers=[],
                                  error=ValueError("not a GoalApplied"), consumer="probe", attempts=1)

    producer = EventProducer(settings)
    for out in (letter(7), letter(7), letter(8)):  # the first, its redelivery after the crash, another record
        send_dead_letter(settings, producer, out, "test/probe")
    producer.close()
    log = EventLog(settings, "deadletter")
    ids = [e.id for e in log.wait(3, 60)]
    log.close()
    assert ids[0] == ids[1] != ids[2]


def test_consumer_lag_counts_what_each_group_has_yet_to_commit(settings: Settings) -> None:
    """`tuneline status` and the monitor's lag gauge: the events after a group's committed offsets.
    (It read no group at all while the admin client was collected before its listing finished.)"""
    from confluent_kafka import Consumer

    from services.kernel.bus.lag import consumer_lag
    from services.kernel.bus.security import client_config
    from services.kernel.outbox import publish_now

    publish_now(settings, [Outgoing(ev.AlertRaised(summary=str(i)), "g") for i in range(5)], source="test")
    group = settings.group("probe")
    consumer = Consumer(client_config(settings, {"group.id": group, "enable.auto.commit": False,
                                                 "auto.offset.reset": "earliest"}))
    consumer.subscribe([settings.topic("alert.raised")])
    read = []

    def two_read() -> bool:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            read.append(m)
        return len(read) >= 2
    wait_for(two_read, 30, "two events read")
    consumer.commit(message=read[-1], asynchronous=False)
    try:
        # One subject, so one partition: offsets 0-4, two read and committed.
        assert consumer_lag(settings) == {group: 3}, "three events to go, and only this namespace's groups"
    finally:
        consumer.close()
