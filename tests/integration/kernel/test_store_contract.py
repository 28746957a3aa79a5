"""One contract for every store backend: each test runs on SQLite and on a real PostgreSQL server.

What the services rely on: migrations apply once, an event has one effect however often it comes,
the outbox relays in commit order, a job runs on one runner at a time and finishes once, and many
concurrent writers lose nothing and duplicate nothing (RELIABILITY.md R17).
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.bus.consumer import EventProcessor, RawRecord, Subscription
from services.kernel.events import Incoming, Outgoing, Record, decode, encode
from services.kernel.jobs import Job, JobContext, JobRunner, enqueue_job
from services.kernel.outbox import OutboxRelay, emit
from services.kernel.retry import RetryPolicy, is_transient
from services.kernel.settings import Settings
from services.kernel.store import Store, inbox, jobs, outbox, utcnow
from tests.support import signed, wait_for

pytestmark = pytest.mark.integration


class RecordingProducer:
    """Keeps what the relay or the processor sent: the store's behaviour is under test here, not Kafka's."""

    def __init__(self) -> None:
        self.sent: list[Record] = []

    def send(self, records: list[Record], timeout_s: float = 30.0) -> None:
        self.sent.extend(records)


def _open(url: str, **kwargs: float) -> Store:
    store = Store(url, "contract", **kwargs)  # type: ignore[arg-type]
    store.migrate()
    return store


def _count(store: Store, table: sa.Table) -> int:
    with store.session() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _summaries(producer: RecordingProducer) -> list[str]:
    return [cast(ev.AlertRaised, decode(r.value, r.headers).message).summary for r in producer.sent]


class TestStoreContract:
    def test_migrations_apply_once_and_make_the_kernel_tables(self, store_url: str) -> None:
        store = Store(store_url, "contract")
        try:
            assert "kernel_0003" in store.migrate()
            assert store.migrate() == []
            columns = {c["name"] for c in sa.inspect(store.engine).get_columns("tuneline_jobs")}
            assert {"owner", "lease_until"} <= columns
        finally:
            store.dispose()

    @pytest.mark.parametrize("service", ["ingest", "trainer", "evaluator", "deployer", "monitor"])
    def test_every_services_migrations_apply_once(self, store_url: str, service: str) -> None:
        folder = Path(__file__).parents[3] / "services" / service / "migrations"
        store = Store(store_url, service)
        try:
            assert store.migrate(folder), f"{service}: no revision applied"
            assert store.migrate(folder) == []
        finally:
            store.dispose()

    def test_a_redelivered_event_has_one_effect(self, store_url: str, offline_settings: Settings) -> None:
        store = _open(store_url)
        calls: list[str] = []

        def handler(inc: Incoming[ev.GoalApplied], _s: Session) -> list[Outgoing]:
            calls.append(inc.id)
            return [Outgoing(ev.AlertRaised(summary=inc.message.goal_name), inc.subject)]

        rec = signed(offline_settings, encode(Outgoing(ev.GoalApplied(goal_name="g1"), "g1"), topic="t.tuneline.goal.applied",
                                              source="test"))
        raw = RawRecord(rec.topic, 0, 0, rec.key, rec.value, rec.headers)
        proc = EventProcessor(Subscription("goal.applied", handler, "contract"), store, offline_settings,
                              RecordingProducer(), "contract/1")  # type: ignore[arg-type]
        try:
            for _ in range(3):
                proc.process([raw])
            assert len(calls) == 1 and _count(store, outbox) == 1 and _count(store, inbox) == 1
        finally:
            store.dispose()

    def test_the_outbox_relays_in_commit_order(self, store_url: str, offline_settings: Settings) -> None:
        """A transaction that emitted first but commits last must not be overtaken by a later one.

        `first` emits and holds its transaction open; `second` emits and tries to commit. On
        PostgreSQL `seq` is taken at insert, so without the outbox lock `second` commits with the
        higher seq while `first` is open, the relay sends it, and `first` follows it out of order.
        """
        store = _open(store_url)
        producer = RecordingProducer()
        relay = OutboxRelay(store, offline_settings, "contract/1", producer)  # type: ignore[arg-type]
        emitted, release = threading.Event(), threading.Event()

        def first() -> None:
            with store.session() as s:
                emit(s, Outgoing(ev.AlertRaised(summary="first"), "k"))
                emitted.set()
                release.wait(30)

        def second() -> None:
            store.run(lambda s: emit(s, Outgoing(ev.AlertRaised(summary="second"), "k")))

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        threads[0].start()
        assert emitted.wait(30)
        threads[1].start()
        try:
            # `second` either waits for `first` (the contract) or commits now (the bug); give it time to,
            # then let the relay read meanwhile (on SQLite the relay waits for the writer's lock too).
            threads[1].join(timeout=1.5)
            threads.append(threading.Thread(target=relay.relay_once))
            threads[2].start()
            threads[2].join(timeout=1.5)
        finally:
            release.set()
            for t in threads:
                t.join(30)
        wait_for(lambda: relay.relay_once() == 0 and _count(store, outbox) == 2, 30, "both events relayed")
        try:
            assert _summaries(producer) == ["first", "second"]
        finally:
            store.dispose()

    def test_two_runners_never_run_one_job_and_it_finishes_once(self, store_url: str) -> None:
        store = _open(store_url)
        with store.session() as s:
            enqueue_job(s, "train", "run-1", "{}")
        ran: list[str] = []
        other_looked = threading.Event()

        def execute(job: Job, _ctx: JobContext) -> list[Outgoing]:
            ran.append(job.key)
            assert other_looked.wait(30), "the second runner never tried"
            return [Outgoing(ev.RunFinished(run_id=job.key, status="succeeded"), "g")]

        a = JobRunner(store, "train", execute, owner="host-a/trainer")
        b = JobRunner(store, "train", execute, owner="host-b/trainer")
        worker = threading.Thread(target=a.run_once)
        worker.start()
        try:
            wait_for(lambda: ran, 30, "runner a started the job")
            assert b.run_once() is False, "runner b must not take a job runner a holds"
        finally:
            other_looked.set()
            worker.join(30)
        try:
            assert ran == ["run-1"] and _count(store, outbox) == 1
            assert b.run_once() is False
        finally:
            store.dispose()

    def test_an_expired_lease_is_taken_over_and_the_old_runners_result_dropped(self, store_url: str) -> None:
        store = _open(store_url)
        with store.session() as s:
            enqueue_job(s, "train", "run-2", "{}")

        def execute(job: Job, _ctx: JobContext) -> list[Outgoing]:
            return [Outgoing(ev.RunFinished(run_id=job.key, status="succeeded", failure_reason=job.key), "g")]

        dead = JobRunner(store, "train", execute, owner="host-a/trainer", lease_s=0.5)
        job = dead._claim()  # claimed, then its process "dies": no renewal, no result
        assert job is not None
        heir = JobRunner(store, "train", execute, owner="host-b/trainer")
        assert heir.run_once() is False, "a live lease holds"
        wait_for(heir.run_once, 30, "the job taken over once the lease expired")
        dead._finish(job, "succeeded", execute(job, cast(JobContext, None)), "")  # the old owner comes back late
        try:
            with store.session() as s:
                row = s.execute(sa.select(jobs)).one()
            assert (row.status, row.owner, row.attempts) == ("succeeded", "host-b/trainer", 2)
            assert _count(store, outbox) == 1, "one job, one result"
        finally:
            store.dispose()

    def test_concurrent_writers_lose_nothing_and_duplicate_nothing(self, store_url: str) -> None:
        """R17: 50 writers x 200 transactions through a pool of 4 connections that times out at once,
        so pool exhaustion happens; only transient errors are retried, by the caller's policy."""
        writers, each = 50, 200
        store = _open(store_url, pool_size=4, pool_timeout_s=0.02)
        retried: Counter[str] = Counter()
        failures: list[BaseException] = []

        def counted(err: BaseException) -> bool:
            ok = is_transient(err)
            retried[type(err).__name__ if ok else f"NOT RETRIED {type(err).__name__}"] += 1
            return ok

        policy = RetryPolicy(attempts=1000, base_s=0.002, cap_s=0.05, retry_on=counted)

        def transaction(writer: int, i: int) -> None:
            def work(s: Session) -> None:
                # A consumer's transaction: its inbox row, its effect's event, idempotent on redelivery.
                if s.execute(sa.select(inbox.c.event_id).where(inbox.c.consumer == f"w{writer}", inbox.c.event_id == str(i))).first():
                    return
                s.execute(inbox.insert().values(consumer=f"w{writer}", event_id=str(i), event_type="x", topic="t", partition=0,
                                                offset=i, processed_at=utcnow()))
                emit(s, Outgoing(ev.AlertRaised(summary=f"{writer}:{i}"), f"w{writer}"))
            policy.call(lambda: store.run(work), what="writer")

        def writer(w: int) -> None:
            try:
                for i in range(each):
                    transaction(w, i)
            except BaseException as err:  # noqa: BLE001 - reported by the test below
                failures.append(err)

        # Exhaustion on purpose, not by luck: hold every connection the pool will give until a writer
        # has timed out waiting for one (a fast machine otherwise never queues long enough).
        held = []
        while True:
            try:
                held.append(store.engine.raw_connection())
            except sa.exc.TimeoutError:
                break
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: retried["TimeoutError"] > 0, 60, "a writer to time out on the exhausted pool")
        finally:
            for connection in held:
                connection.close()
        for t in threads:
            t.join(600)
        try:
            assert not failures, failures[:3]
            with store.session() as s:
                summaries = [_summary_of(value) for (value,) in s.execute(sa.select(outbox.c.value)).all()]
            assert len(summaries) == writers * each and len(set(summaries)) == writers * each, "0 lost, 0 duplicated"
            assert _count(store, inbox) == writers * each
            assert not [k for k in retried if k.startswith("NOT RETRIED")], retried
            assert retried["TimeoutError"] > 0, f"the pool was never exhausted: {retried}"
        finally:
            store.dispose()


def _summary_of(value: bytes) -> str:
    msg = ev.AlertRaised()
    msg.ParseFromString(value)
    return msg.summary


def test_the_postgres_fixture_is_the_embedded_server(postgres_ready: Settings, tmp_path: Path) -> None:
    """The services' URL points at the embedded server's per-service databases."""
    from services.kernel import postgres

    url = postgres.store_url(postgres_ready)
    assert url.startswith("postgresql+psycopg://tuneline:") and url.endswith(f":{postgres_ready.postgres_port}/tuneline_{{service}}")
    store = Store(url.replace("{service}", "ingest"), "ingest")
    try:
        store.migrate()
    finally:
        store.dispose()
