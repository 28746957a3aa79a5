"""The embedded broker on its own ports: lifecycle, the missing-Java message, and R1 (a broker
killed with SIGKILL while events are produced loses no acknowledged event)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from services.kernel import broker
from services.kernel.bus.producer import producer_config
from services.kernel.settings import Settings
from tests.support import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for a second embedded broker that only this module uses (and may kill)."""
    base = 20000 + (os.getpid() % 2000) * 2
    s = Settings(state_dir=tmp_path_factory.mktemp("broker"), kafka_port=base, kafka_controller_port=base + 1, kafka_heap="384m")
    yield s
    broker.stop(s)


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    # The child process inherits this process's environment plus the private broker's settings.
    env = {**os.environ,  # noqa: TID251 -- a child process's environment
           "TUNELINE_STATE_DIR": str(settings.state_dir), "TUNELINE_KAFKA_PORT": str(settings.kafka_port),
           "TUNELINE_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port), "TUNELINE_KAFKA_HEAP": "384m"}
    env.pop("TUNELINE_KAFKA_BOOTSTRAP", None)
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True, timeout=180)


def test_start_twice_leaves_one_broker_and_status_and_stop_behave(private: Settings) -> None:
    first = _cli(private, "kafka", "start")
    assert first.returncode == 0, first.stderr
    pid = broker.read_pid(private)
    second = _cli(private, "kafka", "start")
    assert second.returncode == 0 and broker.read_pid(private) == pid, "a second start reuses the running broker"
    status = _cli(private, "kafka", "status")
    assert status.returncode == 0 and f"pid {pid}" in status.stdout and "answering" in status.stdout
    assert _cli(private, "kafka", "stop").returncode == 0
    assert broker.read_pid(private) is None
    down = _cli(private, "kafka", "status")
    assert down.returncode == 1 and "not answering" in down.stdout


def test_missing_java_gives_one_clear_sentence(tmp_path: Path) -> None:
    env = {"PATH": "/nonexistent", "TUNELINE_STATE_DIR": str(tmp_path), "TUNELINE_KAFKA_PORT": "1",
           "TUNELINE_KAFKA_JARS_DIR": str(tmp_path / "nojars"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "services.cli", "kafka", "start"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "java was not found on PATH: install a Java 17+ runtime" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_broker_sigkill_loses_no_acknowledged_event(private: Settings) -> None:
    """RELIABILITY.md R1: produce continuously, kill -9 the broker, restart it, count acked events."""
    broker.start(private)
    topic = f"r1-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": private.bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    acked: set[str] = set()
    sent = 0
    stop = threading.Event()
    producer = Producer(producer_config(private, **{"message.timeout.ms": 120000, "linger.ms": 5}))

    def on_delivery(err: object, msg: object) -> None:
        if err is None:
            acked.add(msg.value().decode())  # type: ignore[attr-defined]

    def produce() -> None:
        nonlocal sent
        while not stop.is_set():
            try:
                producer.produce(topic, f"e{sent}".encode(), str(sent % 7).encode(), on_delivery=on_delivery)
                sent += 1
            except BufferError:
                pass
            producer.poll(0.001)

    thread = threading.Thread(target=produce)
    thread.start()
    wait_for(lambda: len(acked) > 2000, 60, "events acknowledged before the kill")
    acked_before_kill = len(acked)
    assert broker.kill(private) is not None
    sent_at_kill = sent
    wait_for(lambda: sent > sent_at_kill + 1000, 30, "events produced while the broker is down")
    broker.start(private)
    wait_for(lambda: len(acked) > acked_before_kill + 2000, 120, "events acknowledged after the restart")
    stop.set()
    thread.join()
    producer.flush(120)

    consumer = Consumer({"bootstrap.servers": private.bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    stored: set[str] = set()

    def read_all() -> bool:
        msg = consumer.poll(0.2)
        while msg is not None:
            if not msg.error():
                value = msg.value()
                assert value is not None, "every event was produced with a value"
                stored.add(value.decode())
            msg = consumer.poll(0.05)
        return acked <= stored

    wait_for(read_all, 60, "every acknowledged event to be readable")
    consumer.close()
    lost = acked - stored
    print(f"R1: sent {sent}, acknowledged {len(acked)}, lost acknowledged {len(lost)}")
    assert not lost, f"lost {len(lost)} of {len(acked)} acknowledged events"
