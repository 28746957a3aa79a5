"""The consumer's delivery rules on a real SQLite store with a recording producer (no Kafka)."""

from __future__ import annotations

from functools import partial
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.bus.consumer import EventProcessor, Handler, RawRecord, Subscription
from services.kernel.errors import InvalidInput, TransientError
from services.kernel.events import Incoming, Outgoing, Record, decode, encode
from services.kernel.jobs import Job, JobContext, JobRunner, enqueue_job
from services.kernel.outbox import OutboxRelay, emit
from services.kernel.settings import Settings
from services.kernel.store import Store, jobs, outbox
from tests.support import local_metrics, metric_total, signed


class RecordingProducer:
    """Stands in for the Kafka producer: keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[Record] = []

    def send(self, records: list[Record], timeout_s: float = 30.0) -> None:
        self.sent.extend(records)


def _raw(settings: Settings, name: str, offset: int = 0, event_id: str | None = None) -> RawRecord:
    """A goal.applied record signed by the operator (goal.applied is a decision: unsigned, it is refused)."""
    rec = signed(settings, encode(Outgoing(ev.GoalApplied(goal_name=name), name), topic="t.tuneline.goal.applied", source="test",
                                  event_id=event_id))
    return RawRecord(rec.topic, 0, offset, rec.key, rec.value, rec.headers)


def _processor(settings: Settings, handler: Handler, producer: RecordingProducer) -> tuple[EventProcessor, Store]:
    store = Store.open(settings, "unit")
    sub = Subscription("goal.applied", handler, "unit")
    return EventProcessor(sub, store, settings, producer, "unit/1"), store  # type: ignore[arg-type]


def _outbox_rows(store: Store) -> int:
    with store.session() as s:
        return s.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()


def test_redelivered_event_has_no_second_effect(offline_settings: Settings) -> None:
    calls: list[str] = []

    def handler(inc: Incoming[ev.GoalApplied], _s: Session) -> list[Outgoing]:
        calls.append(inc.id)
        return [Outgoing(ev.AlertRaised(summary="x"), inc.subject)]

    proc, store = _processor(offline_settings, handler, RecordingProducer())
    rec = _raw(offline_settings, "g1")
    proc.process([rec])
    proc.process([rec])
    proc.process([rec, _raw(offline_settings, "g2", 1)])
    assert len(calls) == 2
    assert _outbox_rows(store) == 2


def test_poison_and_failing_handlers_are_dead_lettered_and_the_rest_processed(offline_settings: Settings) -> None:
    def handler(inc: Incoming[ev.GoalApplied], _s: Session) -> list[Outgoing]:
        if inc.message.goal_name == "bad":
            raise InvalidInput("bad goal")
        if inc.message.goal_name == "bug":
            raise KeyError("always")
        return [Outgoing(ev.AlertRaised(summary=inc.message.goal_name), inc.subject)]

    producer = RecordingProducer()
    proc, store = _processor(offline_settings, handler, producer)
    garbage = RawRecord("t", 0, 9, b"k", b"\x00garbage", [("x", b"y")])
    raw = partial(_raw, offline_settings)
    proc.process([raw("a", 0), garbage, raw("bad", 2), raw("bug", 3), raw("b", 4)])
    with store.session() as s:
        effects = sorted(ev.AlertRaised.FromString(v).summary for v in s.execute(sa.select(outbox.c.value)).scalars())
    assert effects == ["a", "b"], "the good records are processed once each, the failed batch left nothing"
    letters = [cast(ev.DeadLetter, decode(r.value, r.headers).message) for r in producer.sent]
    # A bug (KeyError) is not retried: only transient errors are (services.kernel.retry).
    assert [(lt.offset, lt.attempts) for lt in letters] == [(9, 1), (2, 1), (3, 1)]
    assert letters[0].original_value == b"\x00garbage" and letters[0].error_type == "DecodeError"
    assert letters[2].consumer == "unit" and "always" in letters[2].error


def test_transient_errors_are_retried_then_succeed(offline_settings: Settings) -> None:
    attempts: list[int] = []

    def handler(_inc: Incoming[ev.GoalApplied], _s: Session) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientError("database busy")

    producer = RecordingProducer()
    proc, _ = _processor(offline_settings, handler, producer)
    proc.process([_raw(offline_settings, "g")])
    assert len(attempts) == 3 and not producer.sent


def test_transient_errors_that_never_clear_are_dead_lettered_after_the_last_attempt(offline_settings: Settings) -> None:
    attempts: list[int] = []

    def handler(_inc: Incoming[ev.GoalApplied], _s: Session) -> None:
        attempts.append(1)
        raise TransientError("database busy")

    producer = RecordingProducer()
    proc, _ = _processor(offline_settings, handler, producer)
    proc.process([_raw(offline_settings, "g")])
    letters = [cast(ev.DeadLetter, decode(r.value, r.headers).message) for r in producer.sent]
    assert len(attempts) == offline_settings.consumer_max_attempts
    assert [(lt.attempts, lt.error_type) for lt in letters] == [(offline_settings.consumer_max_attempts, "TransientError")]


def test_a_record_with_a_bad_ce_time_is_dead_lettered(offline_settings: Settings) -> None:
    calls: list[str] = []
    producer = RecordingProducer()
    proc, _ = _processor(offline_settings, lambda inc, _s: calls.append(inc.id), producer)
    good = _raw(offline_settings, "g")
    bad = RawRecord(good.topic, 0, 1, good.key, good.value,
                    [(k, b"not a time" if k == "ce_time" else v) for k, v in good.headers])
    proc.process([bad])
    letters = [cast(ev.DeadLetter, decode(r.value, r.headers).message) for r in producer.sent]
    assert not calls and [(lt.offset, lt.error_type) for lt in letters] == [(1, "DecodeError")]
    assert "ce_time" in letters[0].error


def test_emit_is_part_of_the_callers_transaction(offline_settings: Settings) -> None:
    store = Store.open(offline_settings, "unit")
    try:
        with store.session() as s:
            emit(s, Outgoing(ev.AlertRaised(summary="x"), "g"))
            raise RuntimeError("handler failed after emitting")
    except RuntimeError:
        pass
    assert _outbox_rows(store) == 0


def test_jobs_are_queued_once_resume_after_a_crash_and_finish_once(offline_settings: Settings) -> None:
    store = Store.open(offline_settings, "unit")
    with store.session() as s:
        first = enqueue_job(s, "train", "run-1", "{}")
        assert enqueue_job(s, "train", "run-1", "{}") == first
    # A previous process died while the job ran.
    with store.session() as s:
        s.execute(jobs.update().values(status="running", attempts=1))
    seen: list[int] = []

    def execute(job: Job, ctx: JobContext) -> list[Outgoing]:
        seen.append(job.attempts)
        ctx.progress(0.5, "halfway")
        return [Outgoing(ev.RunFinished(run_id=job.key, status="succeeded"), "g")]

    runner = JobRunner(store, "train", execute)
    assert runner.run_once() and not runner.run_once()
    assert seen == [2]
    assert _outbox_rows(store) == 1


def test_a_job_failing_every_attempt_fails_once_with_its_reason(offline_settings: Settings) -> None:
    store = Store.open(offline_settings, "unit")
    with store.session() as s:
        enqueue_job(s, "train", "run-2", "{}")

    def execute(_job: Job, _ctx: JobContext) -> list[Outgoing]:
        raise ValueError("loss is NaN")

    def on_failure(job: Job, err: BaseException) -> list[Outgoing]:
        return [Outgoing(ev.RunFinished(run_id=job.key, status="failed", failure_reason=str(err)), "g")]

    runner = JobRunner(store, "train", execute, on_failure, max_attempts=3)
    while runner.run_once():
        pass
    with store.session() as s:
        row = s.execute(sa.select(jobs)).one()
        events = s.execute(sa.select(outbox)).all()
    assert row.status == "failed" and row.attempts == 3 and "NaN" in row.error
    assert len(events) == 1


def test_retries_dead_letters_and_processing_are_counted_per_consumer(offline_settings: Settings) -> None:
    local_metrics()
    tries: dict[str, int] = {}

    def handler(inc: Incoming[ev.GoalApplied], _s: Session) -> None:
        name = inc.message.goal_name
        tries[name] = tries.get(name, 0) + 1
        if name == "flaky" and tries[name] < 3:
            raise TransientError("database busy")
        if name == "bad":
            raise InvalidInput("bad goal")

    store = Store.open(offline_settings, "unit")
    proc = EventProcessor(Subscription("goal.applied", handler, "metered"), store, offline_settings,
                          RecordingProducer(), "unit/1")  # type: ignore[arg-type]
    before = local_metrics()
    proc.process([_raw(offline_settings, "flaky")])
    proc.process([_raw(offline_settings, "bad", 1)])
    proc.process([_raw(offline_settings, "fine", 2)])
    after = local_metrics()

    def delta(name: str, **labels: str) -> float:
        return metric_total(after, name, **labels) - metric_total(before, name, **labels)

    labels = {"consumer": "metered", "event": "goal.applied"}
    assert delta("tuneline_bus_retries_total", **labels) == 2, "two transient failures before the third try committed"
    assert delta("tuneline_bus_dead_letters_total", **labels) == 1
    group = offline_settings.group("metered")
    assert delta("messaging_process_duration_seconds_count", messaging_consumer_group_name=group) == 2, \
        "the two committed transactions"


def test_the_relay_counts_what_it_sent_and_the_backlog_it_leaves(offline_settings: Settings) -> None:
    local_metrics()
    store = Store.open(offline_settings, "unit-relay")
    relay = OutboxRelay(store, offline_settings, "unit/1", RecordingProducer(), batch=2)  # type: ignore[arg-type]
    with store.session() as s:
        for i in range(5):
            emit(s, Outgoing(ev.AlertRaised(summary=str(i)), "g"))
    topic = offline_settings.topic("alert.raised")
    assert relay.backlog() == 5
    before = metric_total(local_metrics(), "messaging_client_sent_messages_total", messaging_destination_name=topic)
    assert relay.relay_once() == 2
    after = metric_total(local_metrics(), "messaging_client_sent_messages_total", messaging_destination_name=topic)
    assert after - before == 2 and relay.backlog() == 3
