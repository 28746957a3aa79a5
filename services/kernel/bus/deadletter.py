"""Dead letters: the original record, the error, the consumer and the attempt count, on one topic.

A record of the predictions' log (inference.logged) is dead-lettered without its request text: the
dead-letter topic and the ledger keep letters longer than any goal may keep logged text
(`policy.log_retention_days`), and the monitor reads none of the text.
"""

from __future__ import annotations

import time
import uuid
from typing import cast

from tuneline.events.v1 import events_pb2 as ev

from services.kernel.bus.producer import EventProducer
from services.kernel.events import DEADLETTER, Outgoing, encode
from services.kernel.pii import logged_without_text
from services.kernel.settings import Settings


def dead_letter_record(
    settings: Settings,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None,
    error: BaseException,
    consumer: str,
    attempts: int,
) -> Outgoing:
    """The dead-letter event for a record that a consumer could not process."""
    letter = ev.DeadLetter(
        original_topic=topic,
        partition=partition,
        offset=offset,
        original_key=key or b"",
        original_value=logged_without_text(value or b"") if topic == settings.topic("inference.logged") else value or b"",
        original_headers=[ev.Header(key=k, value=v if isinstance(v, bytes) else str(v).encode()) for k, v in headers or []],
        error=str(error)[:4000],
        error_type=type(error).__name__,
        consumer=consumer,
        attempts=attempts,
        failed_at_unix_ms=int(time.time() * 1000),
    )
    subject = (key or b"").decode("utf-8", errors="replace") or topic
    return Outgoing(letter, subject)


# The namespace of dead letters' ids (uuid5): fixed, so every process names one letter the same.
_LETTERS = uuid.UUID("5b1f0c3e-8a47-4d2e-9c61-2f7e4a9d0b13")


def dead_letter_id(letter: ev.DeadLetter) -> str:
    """One ce_id per (consumer, record): a record redelivered after a crash between the dead-letter send
    and the offset commit, or a send retried after a lost acknowledgement, gives the same event, which
    every inbox (the monitor's alerts, the ledger) takes once."""
    return str(uuid.uuid5(_LETTERS, f"{letter.consumer}\x00{letter.original_topic}\x00{letter.partition}\x00{letter.offset}"))


def send_dead_letter(settings: Settings, producer: EventProducer, letter: Outgoing, source: str) -> None:
    """Publish a dead letter and wait for the broker's acknowledgement before moving on."""
    # `letter` is what dead_letter_record made: its message is a DeadLetter.
    event_id = dead_letter_id(cast(ev.DeadLetter, letter.message))
    producer.send([encode(letter, topic=settings.topic(DEADLETTER), source=source, event_id=event_id)])
