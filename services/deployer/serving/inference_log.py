"""The inference log: every prediction becomes an `inference.logged` event, off the request path.

Requests hand a LogEntry to a bounded in-memory queue and return. One thread drains it in batches:
it projects the embeddings (one matrix product per batch), builds the protobufs, encodes them as
CloudEvents with the kernel codec and hands them to an idempotent producer (acks=all, linger). When
Kafka is down the queue and librdkafka's buffer fill, nothing blocks, and every entry that could not
be delivered is counted in `unlogged` (reported by health and ListDeploymentsResponse).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from confluent_kafka import KafkaError, Producer
from tuneline.events.v1 import events_pb2 as ev

from services.deployer.serving.config import ServingConfig
from services.kernel.bus.producer import producer_config
from services.kernel.events import Outgoing, encode
from services.kernel.features import project
from services.kernel.pii import scrub
from services.kernel.settings import Settings

log = logging.getLogger(__name__)
EVENT = "inference.logged"
_UNHEALTHY_FOR_S = 30.0  # a delivery failure keeps the log "degraded" in health this long


@dataclass(frozen=True)
class LogEntry:
    """One prediction as the inference log needs it (the embedding is projected later, in batches)."""

    request_id: str
    goal: str
    goal_version: str
    adapter_digest: str
    dataset_version: str
    deployment_id: str
    variant: str
    label: str
    confidence: float
    margin: float
    latency_ms: float
    text_length: int
    token_count: int
    embedding: np.ndarray | None
    text: str
    escalated: bool
    error: bool
    error_code: str
    served_at_unix_ms: int
    tenant: str
    trace_id: str
    traceparent: str


class LogSink(Protocol):
    """Where predictions go; record() must never block the request."""

    def record(self, entry: LogEntry) -> None:
        """Hand over one prediction."""

    def unlogged(self) -> int:
        """Predictions that could not be delivered so far."""

    def healthy(self) -> bool:
        """False while deliveries have been failing recently."""

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is buffered (up to timeout_s), then stop."""


class NullLog:
    """Logging switched off: nothing recorded, nothing lost."""

    def record(self, entry: LogEntry) -> None:
        """Drop the entry."""

    def unlogged(self) -> int:
        """Always 0."""
        return 0

    def healthy(self) -> bool:
        """Always True."""
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Nothing to flush."""


def open_inference_log(settings: Settings, config: ServingConfig, source: str = "deployer") -> LogSink:
    """The Kafka inference log, or NullLog when ServingConfig.log_enabled is off."""
    return KafkaInferenceLog(settings, config, source) if config.log_enabled else NullLog()


def to_message(entry: LogEntry, projection: np.ndarray | None) -> ev.InferenceLogged:
    """The protobuf of one entry."""
    msg = ev.InferenceLogged(
        request_id=entry.request_id, goal_name=entry.goal, goal_version=entry.goal_version,
        adapter_digest=entry.adapter_digest, dataset_version=entry.dataset_version,
        deployment_id=entry.deployment_id, variant=entry.variant, label=entry.label,
        confidence=entry.confidence, margin=entry.margin, latency_ms=entry.latency_ms,
        text_length=entry.text_length, token_count=entry.token_count, text=_scrubbed(entry.text),
        escalated=entry.escalated, error=entry.error, error_code=entry.error_code,
        served_at_unix_ms=entry.served_at_unix_ms, tenant=entry.tenant, trace_id=entry.trace_id)
    if projection is not None:
        msg.embedding_projection.extend(float(x) for x in projection)
    return msg


def project_batch(entries: list[LogEntry]) -> list[np.ndarray | None]:
    """The 8-d projection of each entry's embedding, one matrix product per embedding width."""
    out: list[np.ndarray | None] = [None] * len(entries)
    by_width: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, e in enumerate(entries):
        if e.embedding is not None:
            by_width.setdefault(e.embedding.shape[-1], []).append((i, e.embedding))
    for group in by_width.values():
        projected = project(np.stack([embedding for _, embedding in group]))
        for row, (i, _) in zip(projected, group, strict=True):
            out[i] = row
    return out


class KafkaInferenceLog:
    """Batches entries from a bounded queue into an idempotent confluent-kafka producer."""

    def __init__(self, settings: Settings, config: ServingConfig, source: str = "deployer") -> None:
        self._topic = settings.topic(EVENT)
        self._source = source
        self._queue: queue.Queue[LogEntry] = queue.Queue(config.log_queue_capacity)
        self._producer = Producer(producer_config(
            settings, **{"linger.ms": config.log_linger_ms, "message.timeout.ms": config.log_delivery_timeout_ms,
                         "client.id": f"tuneline-{source}-inference-log",
                         "logger": logging.getLogger("tuneline.deployer.inference_log.kafka")}))
        self._lock = threading.Lock()
        self._unlogged = 0
        self.delivered = 0
        self._last_failure = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="inference-log", daemon=True)
        self._thread.start()

    def record(self, entry: LogEntry) -> None:
        """Queue one entry; counted as unlogged at once if the queue is full."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._count_failure(1)

    def unlogged(self) -> int:
        """Entries dropped (queue full, producer buffer full) or not acknowledged by Kafka."""
        return self._unlogged

    def healthy(self) -> bool:
        """No delivery failure in the last 30 seconds."""
        return time.monotonic() - self._last_failure > _UNHEALTHY_FOR_S or self._last_failure == 0.0

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued, wait up to timeout_s for acknowledgements, count the rest as unlogged."""
        self._stop.set()
        self._thread.join(timeout_s)
        left = self._producer.flush(max(0.1, timeout_s))
        if left:
            self._count_failure(left)
            log.warning("%d inference log records were not delivered before shutdown", left)

    def _count_failure(self, n: int) -> None:
        with self._lock:
            self._unlogged += n
            self._last_failure = time.monotonic()

    def _drain(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._take(512)
            if batch:
                self._send(batch)
            self._producer.poll(0 if batch else 0.01)

    def _take(self, limit: int) -> list[LogEntry]:
        try:
            batch = [self._queue.get(timeout=0.05)]
        except queue.Empty:
            return []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _send(self, batch: list[LogEntry]) -> None:
        for entry, projection in zip(batch, project_batch(batch), strict=True):
            trace = {"traceparent": entry.traceparent} if entry.traceparent else {}
            record = encode(Outgoing(to_message(entry, projection), entry.goal), topic=self._topic,
                            source=self._source, trace_headers=trace)
            headers: list[tuple[str, str | bytes | None]] = list(record.headers)
            try:
                self._producer.produce(record.topic, record.value, record.key, headers=headers,
                                       on_delivery=self._on_delivery)
            except BufferError:
                self._count_failure(1)

    def _on_delivery(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self._count_failure(1)
            if self._unlogged % 1000 == 1:  # the first failure and every 1000th: Kafka down must not flood the log
                log.warning("inference log delivery failed (%d unlogged so far): %s", self._unlogged, err)
        else:
            self.delivered += 1


def _scrubbed(text: str) -> str:
    """The text with PII replaced by typed placeholders (done here, off the request path)."""
    return scrub(text).text if text else ""
