"""`tuneline bench bus`: producer events/s and produce -> consume latency on the configured broker.

Throughput: N inference-log-sized events through the idempotent producer (acks=all), timed to the
last acknowledgement. Latency: events sent at a fixed rate, each stamped with its send time, read
back by a plain confluent consumer; p50/p99 of receive minus send (same clock, one machine).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from tuneline.events.v1 import events_pb2 as ev

from benchmarks.report import percentile, spread, write_result
from services.kernel.bus.producer import producer_config
from services.kernel.bus.security import client_config
from services.kernel.events import Outgoing, encode
from services.kernel.settings import Settings

console = Console()


def _sample_event() -> Outgoing:
    msg = ev.InferenceLogged(request_id=str(uuid.uuid4()), goal_name="bench", adapter_digest="sha256:" + "0" * 64,
                             variant="champion", label="card_arrival", confidence=0.93, margin=0.5, latency_ms=3.2,
                             text_length=42, token_count=12, embedding_projection=[0.1] * 8)
    return Outgoing(msg, "bench")


def _topic(settings: Settings) -> str:
    name = f"{settings.namespace}bench.bus.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(client_config(settings))
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def producer_rate(settings: Settings, topic: str, n: int) -> float:
    """Events per second through the idempotent producer, to the last acknowledgement."""
    record = encode(_sample_event(), topic=topic, source="bench")
    producer = Producer(producer_config(settings, **{"linger.ms": 5}))
    headers: list[tuple[str, str | bytes | None]] = list(record.headers)
    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                producer.produce(topic, record.value, record.key, headers=headers)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    return n / (time.perf_counter() - start)


def latencies(settings: Settings, topic: str, n: int, rate: float) -> list[float]:
    """Produce -> consume latency (ms) of n events sent at `rate` per second."""
    consumer = Consumer(client_config(settings, {"group.id": f"bench-{uuid.uuid4().hex}", "auto.offset.reset": "latest",
                                                 "fetch.wait.max.ms": 5, "enable.auto.commit": False}))
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.1)
    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    # Warm-up: the idempotent producer id is acquired before the first timed send (~0.5 s here).
    producer.produce(topic, b"warm-up", b"k")
    producer.flush(30)
    got: list[float] = []
    gap = 1.0 / rate
    next_send = time.perf_counter()
    sent = 0
    while len(got) < n and time.monotonic() < deadline + 60:
        now = time.perf_counter()
        if sent < n and now >= next_send:
            producer.produce(topic, str(time.perf_counter_ns()).encode(), b"k")
            producer.poll(0)
            sent += 1
            next_send += gap
        msg = consumer.poll(0.0005)
        if msg is not None and not msg.error() and (value := msg.value()) is not None and value != b"warm-up":
            got.append((time.perf_counter_ns() - int(value)) / 1e6)
    producer.flush(10)
    consumer.close()
    return got


def run(*, events: int, latency_events: int, rate: float, reps: int, out: Path | None) -> None:
    """Producer events/s and produce->consume p50/p99 on the local broker."""
    settings = Settings()
    topic = _topic(settings)
    producer_rate(settings, topic, 2000)  # warm-up: connections, idempotent producer id
    rates = [producer_rate(settings, topic, events) for _ in range(reps)]
    lat = latencies(settings, topic, latency_events, rate)
    latency_ms = {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "n": len(lat), "rate_per_s": rate}
    result: dict[str, object] = {
        "producer_events_per_s": spread(rates),
        "latency_ms": latency_ms,
        "config": {"acks": "all", "idempotence": True, "events": events, "bootstrap": settings.bootstrap},
    }
    path = write_result("bus", result, out)
    console.print(f"producer {spread(rates)['median']:,.0f} events/s (median of {reps}); "
                  f"produce->consume p50 {latency_ms['p50']:.2f} ms, p99 {latency_ms['p99']:.2f} ms "
                  f"at {rate:.0f}/s -> {path}")
