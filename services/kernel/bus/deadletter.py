"""Dead letters: the original record, the error, the consumer and the attempt count, on one topic.

A record of the predictions' log (inference.logged) is dead-lettered without its request text: the
dead-letter topic and the ledger keep letters longer than any goal may keep logged text
(`policy.log_retention_days`), and the monitor reads none of the text.
"""

from __future__ import annotations

import time

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


def send_dead_letter(settings: Settings, producer: EventProducer, letter: Outgoing, source: str) -> None:
    """Publish a dead letter and wait for the broker's acknowledgement before moving on."""
    producer.send([encode(letter, topic=settings.topic(DEADLETTER), source=source)])
