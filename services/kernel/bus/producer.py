"""The idempotent confluent-kafka producer every Tuneline process publishes with."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from confluent_kafka import KafkaError, KafkaException, Producer

from services.kernel.bus.security import librdkafka_config
from services.kernel.errors import TransientError
from services.kernel.events import Record
from services.kernel.settings import Settings

log = logging.getLogger(__name__)


def producer_config(settings: Settings, **overrides: object) -> dict[str, object]:
    """librdkafka settings: idempotence and acks=all so an acknowledged event is never lost."""
    config: dict[str, object] = {
        "bootstrap.servers": settings.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        # No compression: faust consumes with aiokafka, which has no lz4/zstd codec installed.
        "compression.type": "none",
        "message.timeout.ms": 30000,
        "client.id": f"tuneline-{settings.instance or 'producer'}",
        **librdkafka_config(settings),
    }
    config.update(overrides)
    return config


class EventProducer:
    """Publishes records and waits for the broker's acknowledgement of each."""

    def __init__(self, settings: Settings, **overrides: object) -> None:
        self._producer = Producer(producer_config(settings, **overrides))
        self._lock = threading.Lock()

    def send(self, records: Iterable[Record], timeout_s: float = 30.0) -> None:
        """Produce records in order and block until all are acknowledged (TransientError if not)."""
        failures: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                failures.append(str(err))

        with self._lock:
            pending = 0
            for r in records:
                self._produce(r, on_delivery)
                pending += 1
            left = self._producer.flush(timeout_s)
        if left or failures:
            raise TransientError(f"{left or len(failures)} of {pending} events not acknowledged: {failures[:3]}")

    def _produce(self, r: Record, on_delivery: Callable[[KafkaError | None, object], None]) -> None:
        while True:
            try:
                headers: list[tuple[str, str | bytes | None]] = list(r.headers)
                self._producer.produce(r.topic, value=r.value, key=r.key, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as err:
                raise TransientError(f"could not produce to {r.topic}: {err}") from err

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued, then let go of the connection."""
        self._producer.flush(timeout_s)
