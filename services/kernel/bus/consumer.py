"""What a consumer does with a batch of records: decode → handler → one transaction → dead letters.

The handler's state change, the inbox row (ce_id seen) and the outbox rows of the events it
returns commit in ONE transaction, so a redelivered record finds its inbox row and changes nothing.
Transient errors are retried with backoff; a permanent error, or too many attempts, sends the
record to `tuneline.deadletter` (acknowledged by the broker) and the partition moves on.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from services.kernel.bus import instruments
from services.kernel.bus.deadletter import dead_letter_record, send_dead_letter
from services.kernel.bus.producer import EventProducer
from services.kernel.errors import PermanentError
from services.kernel.events import Incoming, Outgoing, decode
from services.kernel.outbox import emit
from services.kernel.retry import RetriesExhausted, RetryPolicy
from services.kernel.settings import Settings
from services.kernel.signing import Verifier
from services.kernel.store import Store, inbox, utcnow
from services.kernel.telemetry import (
    ATTR_EVENT_ID,
    ATTR_EVENT_TYPE,
    ATTR_SUBJECT,
    SPAN_CONSUME,
    continued_span,
    link_to,
    tracer,
)

log = logging.getLogger(__name__)

# A dead letter must reach the broker before the partition moves on: fast retries first, then every
# 30 s at most while the broker is away (keep_trying never drops it).
DEADLETTER_RETRY = RetryPolicy(attempts=6, base_s=0.2, cap_s=30.0)

Handler = Callable[[Incoming[Any], Session], Iterable[Outgoing] | None]


@dataclass(frozen=True)
class Subscription:
    """A handler bound to one event type under a named consumer (its inbox and group)."""

    event: str
    handler: Handler
    consumer: str
    batch_size: int = 1
    batch_within_s: float = 0.05


@dataclass(frozen=True)
class RawRecord:
    """A record as it came off the broker."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class EventProcessor:
    """Runs one subscription's handler over batches of raw records with the delivery guarantees."""

    def __init__(
        self,
        sub: Subscription,
        store: Store,
        settings: Settings,
        producer: EventProducer,
        source: str,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.sub, self.store, self.settings, self.producer, self.source = sub, store, settings, producer, source
        self.on_commit = on_commit
        self.processed = 0
        self.dead_lettered = 0
        # Only transient errors are retried (services.kernel.retry.is_transient): a bug or a config
        # error dead-letters at once instead of after every backoff.
        self._verifier = Verifier(settings)
        self._retry = RetryPolicy(attempts=settings.consumer_max_attempts, base_s=settings.consumer_backoff_s,
                                  cap_s=max(settings.consumer_backoff_s, settings.consumer_backoff_cap_s))
        self._attrs = {"consumer": sub.consumer, "event": sub.event}
        self._process_attrs = {"messaging.consumer.group.name": settings.group(sub.consumer),
                               "messaging.destination.name": settings.topic(sub.event)}
        instruments.declare_consumer(sub.consumer, sub.event)

    def process(self, records: list[RawRecord]) -> None:
        """Process records in order; returns once each is committed or dead-lettered."""
        decoded: list[tuple[RawRecord, Incoming[Message]]] = []
        for r in records:
            try:
                inc = decode(r.value, r.headers, topic=r.topic, partition=r.partition, offset=r.offset, expect=self.sub.event)
                # A decision acts only when whoever may make it signed it (services.kernel.signing).
                self._verifier.signer_of(inc.type, r.headers, r.value or b"")
                decoded.append((r, inc))
            except PermanentError as err:
                self._dead_letter(r, err, attempts=1)
        if not decoded:
            return
        if len(decoded) > 1:
            try:
                self._with_retries(decoded)
                return
            except RetriesExhausted as gave_up:
                # Isolate the bad record by going one at a time.
                log.warning("%s: batch of %d failed (%s); processing one by one", self.sub.consumer, len(decoded), gave_up)
        for pair in decoded:
            try:
                self._with_retries([pair])
            except RetriesExhausted as gave_up:
                self._dead_letter(pair[0], gave_up.error, gave_up.attempts)

    def _with_retries(self, batch: list[tuple[RawRecord, Incoming[Message]]]) -> None:
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                instruments.RETRIES.add(1, self._attrs)
            started = time.perf_counter()
            self._transaction(batch)
            instruments.PROCESS_DURATION.record(time.perf_counter() - started, self._process_attrs)
        self._retry.call(attempt, what=self.sub.consumer)

    def _transaction(self, batch: list[tuple[RawRecord, Incoming[Message]]]) -> None:
        with self.store.session() as session:
            seen = self._seen(session, [inc.id for _, inc in batch])
            fresh = []
            for _, inc in batch:
                if inc.id not in seen:
                    seen.add(inc.id)
                    fresh.append(inc)
            if len(fresh) == 1:
                with self._span(fresh[0]):
                    self._handle(session, fresh[0])
            elif fresh:
                # One span per batch, linked to each event's trace: a span per event would cost
                # more than the handler on high-rate topics (inference.logged).
                with self._batch_span(fresh):
                    for inc in fresh:
                        self._handle(session, inc)
            if fresh:
                session.execute(inbox.insert(), [self._inbox_row(inc) for inc in fresh])
        new = len(fresh)
        self.processed += len(batch)
        self.on_commit()
        if new and self.settings.crash_after_commit == self.sub.event:
            # RELIABILITY.md R3 test hook: die after the commit, before the offset commit.
            os.kill(os.getpid(), signal.SIGKILL)

    def _seen(self, session: Session, ids: list[str]) -> set[str]:
        q = sa.select(inbox.c.event_id).where(inbox.c.consumer == self.sub.consumer, inbox.c.event_id.in_(ids))
        return set(session.execute(q).scalars())

    def _span(self, inc: Incoming[Message]) -> AbstractContextManager[object]:
        attrs = {ATTR_EVENT_ID: inc.id, ATTR_EVENT_TYPE: inc.type, ATTR_SUBJECT: inc.subject}
        return continued_span(SPAN_CONSUME.format(event=inc.type), inc.traceparent, inc.tracestate, **attrs)

    def _batch_span(self, batch: list[Incoming[Message]]) -> AbstractContextManager[object]:
        links = [ln for inc in batch[:32] for ln in link_to(inc.traceparent)]
        return tracer().start_as_current_span(SPAN_CONSUME.format(event=batch[0].type) + " batch", links=links,
                                              attributes={"tuneline.batch.size": len(batch)})

    def _handle(self, session: Session, inc: Incoming[Message]) -> None:
        for out in self.sub.handler(inc, session) or ():
            emit(session, out)

    def _inbox_row(self, inc: Incoming[Message]) -> dict[str, object]:
        return {"consumer": self.sub.consumer, "event_id": inc.id, "event_type": inc.type, "topic": inc.topic,
                "partition": inc.partition, "offset": inc.offset, "processed_at": utcnow()}

    def _dead_letter(self, r: RawRecord, err: BaseException, attempts: int) -> None:
        letter = dead_letter_record(
            self.settings, topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value,
            headers=r.headers, error=err, consumer=self.sub.consumer, attempts=attempts,
        )
        # Never ack silently: the partition moves on only once the broker holds the dead letter, so
        # this retries through every error; past the policy's attempts it escalates to a critical log
        # (the broker that would carry an alert is the one refusing the dead letter).
        def escalate(gave_up: RetriesExhausted) -> None:
            log.critical("%s: cannot dead-letter %s[%d]@%d: %s; the partition waits until the broker takes it",
                         self.sub.consumer, r.topic, r.partition, r.offset, gave_up)

        DEADLETTER_RETRY.keep_trying(lambda: send_dead_letter(self.settings, self.producer, letter, self.source),
                                     escalate=escalate, what=f"{self.sub.consumer} dead letter")
        self.dead_lettered += 1
        instruments.DEAD_LETTERS.add(1, self._attrs)
        log.error("%s: dead-lettered %s[%d]@%d after %d attempt(s): %s", self.sub.consumer, r.topic, r.partition, r.offset, attempts, err)
