"""The transactional outbox: events are stored with the state change that caused them, then relayed.

`emit` adds a row in the caller's transaction; the relay publishes unsent rows in order with the
idempotent producer and marks them sent. A crash between publishing and marking re-publishes the
same ce_id, which consumers' inboxes absorb: at-least-once delivery, effect once.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.kernel.bus import instruments
from services.kernel.bus.producer import EventProducer
from services.kernel.errors import ConfigError
from services.kernel.events import Outgoing, Record, encode
from services.kernel.retry import RetriesExhausted, RetryPolicy
from services.kernel.settings import Settings
from services.kernel.signing import IDENTITIES, Signer
from services.kernel.store import Store, outbox, utcnow
from services.kernel.telemetry import current_trace_headers

log = logging.getLogger(__name__)
_SOURCE_PLACEHOLDER = "-"
# Every error retries (the rows must go out), from 0.1 s up to every 10 s; after 8 failures in a row
# the relay escalates once with a critical log.
RELAY_RETRY = RetryPolicy(attempts=8, base_s=0.1, cap_s=10.0, retry_on=lambda _err: True)


# PostgreSQL assigns `seq` at insert time, not at commit: two transactions that emit could commit in
# the other order, and a relay reading between the commits would send the later event first. Emitting
# transactions therefore take this transaction-scoped advisory lock first, so they commit one after
# the other in `seq` order. (SQLite's BEGIN IMMEDIATE already serialises every writer.)
OUTBOX_LOCK = 0x74756E656C696E65  # "tuneline"


def emit(session: Session, out: Outgoing) -> str:
    """Add an event to the outbox in the caller's transaction; returns its ce_id."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK})
    record = encode(out, topic=out.event, source=_SOURCE_PLACEHOLDER, trace_headers=current_trace_headers())
    session.execute(
        outbox.insert().values(
            event_id=record.id,
            event_type=out.event,
            topic=out.event,
            key=record.key,
            value=record.value,
            headers=[[k, base64.b64encode(v).decode()] for k, v in record.headers],
            created_at=utcnow(),
        )
    )
    return record.id


def _record(row: sa.Row[Any], settings: Settings, source: str, signer: Signer | None) -> Record:
    headers = [(k, base64.b64decode(v)) for k, v in row.headers]
    headers = [(k, source.encode()) if k == "ce_source" else (k, v) for k, v in headers]
    if signer is not None:  # signed once the source is final: the signature covers it
        headers = signer.headers(headers, row.value)
    return Record(settings.topic(row.topic), row.key, row.value, headers)


class OutboxRelay:
    """Publishes a store's unsent outbox rows, oldest first, and marks them sent."""

    def __init__(self, store: Store, settings: Settings, source: str, producer: EventProducer, batch: int = 500) -> None:
        self.store, self.settings, self.source, self.producer, self.batch = store, settings, source, producer, batch
        # Every event a service emits is signed by the service's identity (the first part of its source).
        self.signer = Signer.load(settings, source.partition("/")[0])
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unobserve: Callable[[], None] = lambda: None

    def relay_once(self) -> int:
        """Publish up to one batch of unsent rows; returns how many were sent."""
        with self.store.session() as s:
            rows = s.execute(
                sa.select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.seq).limit(self.batch)
            ).all()
        if not rows:
            return 0
        self.producer.send([_record(r, self.settings, self.source, self.signer) for r in rows])
        seqs = [r.seq for r in rows]
        self.store.run(lambda s: s.execute(outbox.update().where(outbox.c.seq.in_(seqs)).values(sent_at=utcnow())))
        for row in rows:
            instruments.SENT.add(1, {"messaging.destination.name": self.settings.topic(row.topic)})
        return len(rows)

    def backlog(self) -> int:
        """Outbox rows not yet published (counted up to instruments.BACKLOG_COUNT_LIMIT)."""
        unsent = sa.select(outbox.c.seq).where(outbox.c.sent_at.is_(None)).limit(instruments.BACKLOG_COUNT_LIMIT).subquery()
        with self.store.session() as s:
            return int(s.execute(sa.select(sa.func.count()).select_from(unsent)).scalar_one())

    def _escalate(self, gave_up: RetriesExhausted) -> None:
        # The rows stay in the store (nothing is lost); the broker or the store is away.
        log.critical("outbox relay %s: cannot publish (%s); events stay queued and go out once it recovers",
                     self.store.service, gave_up)

    def _loop(self) -> None:
        while not self._stop.is_set():
            sent = RELAY_RETRY.keep_trying(self.relay_once, escalate=self._escalate, stop=self._stop,
                                           what=f"outbox relay {self.store.service}") or 0
            if sent < self.batch:
                # Woken by a commit that emitted, or poll every 100 ms for rows from other processes.
                self.wake.wait(0.1)
                self.wake.clear()

    def start(self) -> None:
        """Relay in a background thread until stop()."""
        self._thread = threading.Thread(target=self._loop, name=f"outbox-relay-{self.store.service}", daemon=True)
        self._thread.start()
        self._unobserve = instruments.BACKLOG.add(lambda: [(self.backlog(), {})])

    def stop(self) -> None:
        """Finish the current batch, then stop; anything unsent goes out on the next start."""
        self._stop.set()
        self.wake.set()
        self._unobserve()
        if self._thread:
            self._thread.join(timeout=15)
        try:
            self.relay_once()
        except Exception as err:  # noqa: BLE001 - the rows stay unsent and go out on restart
            log.warning("outbox relay: final flush failed (%s); rows stay queued", err)


def publish_now(settings: Settings, events: list[Outgoing], source: str, signer: str = "") -> list[str]:
    """Publish events directly with the idempotent producer (CLIs, upstream tools); returns ce_ids.

    `signer` names the identity whose key signs them (an operator's goal or rollback); empty: unsigned,
    which only events that are not decisions may be (a dataset publication).
    """
    headers = current_trace_headers()
    records = [encode(e, topic=settings.topic(e.event), source=source, trace_headers=headers) for e in events]
    if signer:
        key = Signer.load(settings, signer)
        if key is None:
            raise ConfigError(f"{signer!r} is not a Tuneline identity", hint=f"one of {', '.join(IDENTITIES)}")
        records = [key.sign(r) for r in records]
    producer = EventProducer(settings)
    producer.send(records)
    producer.close()
    return [r.id for r in records]
