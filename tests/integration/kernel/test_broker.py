"""The embedded broker on its own ports: lifecycle, the missing-Java message, and R1 (a broker
killed with SIGKILL while events are produced loses no acknowledged event), on one node and on a
three-node cluster that keeps accepting events while one node is down."""

from __future__ import annotations

import os
import socket
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
from services.kernel.bus.topics import ensure_topics
from services.kernel.settings import Settings
from tests.support import free_ports, wait_for

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


class _Load:
    """An idempotent acks=all producer sending numbered events on a thread; remembers which were acknowledged."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic, self.acked, self.sent = topic, set[str](), 0
        self._stop = threading.Event()
        self._producer = Producer(producer_config(settings, **{"message.timeout.ms": 120000, "linger.ms": 5}))
        self._thread = threading.Thread(target=self._produce)
        self._thread.start()

    def _on_delivery(self, err: object, msg: object) -> None:
        if err is None:
            self.acked.add(msg.value().decode())  # type: ignore[attr-defined]

    def _produce(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.produce(self.topic, f"e{self.sent}".encode(), str(self.sent % 7).encode(), on_delivery=self._on_delivery)
                self.sent += 1
            except BufferError:
                pass
            self._producer.poll(0.001)

    def finish(self) -> None:
        self._stop.set()
        self._thread.join()
        self._producer.flush(120)


def test_broker_sigkill_loses_no_acknowledged_event(private: Settings) -> None:
    """RELIABILITY.md R1: produce continuously, kill -9 the broker, restart it, count acked events."""
    broker.start(private)
    topic = f"r1-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": private.bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    load = _Load(private, topic)
    wait_for(lambda: len(load.acked) > 2000, 60, "events acknowledged before the kill")
    acked_before_kill = len(load.acked)
    assert broker.kill(private) is not None
    sent_at_kill = load.sent
    wait_for(lambda: load.sent > sent_at_kill + 1000, 30, "events produced while the broker is down")
    broker.start(private)
    wait_for(lambda: len(load.acked) > acked_before_kill + 2000, 120, "events acknowledged after the restart")
    load.finish()
    lost = _lost(private, topic, load.acked)
    print(f"R1: sent {load.sent}, acknowledged {len(load.acked)}, lost acknowledged {len(lost)}")
    assert not lost, f"lost {len(lost)} of {len(load.acked)} acknowledged events"


def _free_cluster_ports() -> int:
    """A base port p with p..p+5 free: three nodes' client and controller ports (services.kernel.broker.node_ports)."""
    for _ in range(50):
        [base] = free_ports(1)
        try:
            for port in range(base, base + 6):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError("no six consecutive free ports")


def test_a_cluster_node_sigkilled_under_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    """R1 on `kafka start --brokers 3`: topics get 3 replicas and min.insync.replicas 2, so with the
    leader of a partition killed the cluster keeps acknowledging, and no acknowledged event is lost."""
    base = _free_cluster_ports()
    cluster = Settings(state_dir=tmp_path / "cluster", kafka_port=base, kafka_controller_port=base + 1, kafka_heap="384m",
                       namespace="r1c.")
    try:
        assert broker.start(cluster, brokers=3).brokers == 3
        cluster = Settings(state_dir=cluster.state_dir, kafka_port=base, kafka_controller_port=base + 1, kafka_heap="384m",
                           namespace="r1c.")  # a fresh process on that state folder sees the whole cluster
        assert cluster.bootstrap.count(",") == 2 and cluster.replication == 3
        ensure_topics(cluster)
        topic = cluster.topic("alert.raised")
        md = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(topic, timeout=10).topics[topic]
        assert all(len(p.replicas) == 3 for p in md.partitions.values())
        load = _Load(cluster, topic)
        wait_for(lambda: len(load.acked) > 2000, 60, "events acknowledged before the kill")
        leader = md.partitions[0].leader
        assert broker.kill(cluster, node=leader) is not None
        acked_at_kill = len(load.acked)
        wait_for(lambda: len(load.acked) > acked_at_kill + 2000, 120, "events acknowledged while a node is down")
        broker.start(cluster)  # the killed node comes back and catches up
        assert broker.status(cluster).nodes_running == 3
        load.finish()
        lost = _lost(cluster, topic, load.acked)
        print(f"R1 (3 nodes, leader {leader} killed): sent {load.sent}, acknowledged {len(load.acked)}, "
              f"acknowledged while it was down {len(load.acked) - acked_at_kill}, lost acknowledged {len(lost)}")
        assert not lost, f"lost {len(lost)} of {len(load.acked)} acknowledged events"
    finally:
        broker.stop(cluster)


def _lost(settings: Settings, topic: str, acked: set[str]) -> set[str]:
    """The acknowledged events that cannot be read back."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False})
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

    try:
        wait_for(read_all, 60, "every acknowledged event to be readable")
    except AssertionError:
        pass  # what is missing is the answer
    consumer.close()
    return acked - stored
