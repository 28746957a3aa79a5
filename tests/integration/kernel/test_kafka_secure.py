"""The secure embedded broker (`tuneline kafka start --secure`) on its own ports and state folder:
clients without credentials, with a wrong password or without a grant are refused with Kafka's own
errors; each identity writes only the topics it owns and reads its own; a faust service runs as its
identity. The shared plaintext broker is never touched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
from tuneline.events.v1 import events_pb2 as ev

from services.kernel import broker, liveness
from services.kernel.broker_security import SecureKafka
from services.kernel.bus.producer import producer_config
from services.kernel.bus.security import client_config
from services.kernel.bus.topics import admin
from services.kernel.errors import ConfigError
from services.kernel.events import Outgoing
from services.kernel.outbox import publish_now
from services.kernel.settings import Settings
from tests.support import free_ports, python, start_process, stop_process, wait_for

pytestmark = pytest.mark.integration
PROBE = Path(__file__).with_name("probe_service.py")
# A refused client never gets an acknowledgement: give up on a record after 5 s instead of 30.
REFUSED_WITHIN_MS = 3000
AUTHORIZATION_FAILED = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A secure broker that only this module uses, started by the CLI; stopped and checked gone at the end."""
    port, controller = free_ports(2)
    s = Settings(state_dir=tmp_path_factory.mktemp("secure"), kafka_bootstrap="", kafka_heap="384m", kafka_security_protocol="",
                 kafka_sasl_mechanism="", kafka_sasl_username="", kafka_sasl_password="", kafka_ssl_ca_location=None,
                 namespace="").replace(kafka_port=port, kafka_controller_port=controller)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNELINE_")}  # noqa: TID251 -- a child process's environment
    env.update({"TUNELINE_STATE_DIR": str(s.state_dir), "TUNELINE_KAFKA_PORT": str(port),
                "TUNELINE_KAFKA_CONTROLLER_PORT": str(controller), "TUNELINE_KAFKA_HEAP": "384m"})
    try:
        done = subprocess.run([sys.executable, "-m", "services.cli", "kafka", "start", "--secure"], env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SASL_SSL with ACLs" in done.stdout and "operator.env" in done.stdout
        yield s
    finally:
        pid = broker.read_pid(s)
        broker.stop(s)
        assert broker.read_pid(s) is None and (pid is None or not liveness.alive(pid)), "the broker process is gone"
        assert not _port_open(port) and not _port_open(controller), "both listeners are closed"


@pytest.fixture
def ns(secure: Settings) -> Settings:
    """A fresh namespace on the secure broker, its topics created and every identity's ACLs granted by admin."""
    s = secure.replace(namespace=f"t{uuid.uuid4().hex[:10]}.")
    SecureKafka.of(s).provision(s)
    return s


def _as(settings: Settings, identity: str) -> Settings:
    return SecureKafka.of(settings).as_identity(settings, identity)


def _produce(config: Mapping[str, object], topic: str) -> tuple[int | None, set[int]]:
    """Produce one record: (the delivery report's error code or None when acknowledged, the client's error codes)."""
    errors: set[int] = set()
    report: list[KafkaError | None] = []
    producer = Producer({**config, "message.timeout.ms": REFUSED_WITHIN_MS, "error_cb": lambda e: errors.add(e.code())})
    producer.produce(topic, b"probe", b"k", on_delivery=lambda err, _msg: report.append(err))
    producer.flush(REFUSED_WITHIN_MS / 1000 + 10)
    assert len(report) == 1
    return (report[0].code() if report[0] else None), errors


def _consume(config: Mapping[str, object], topic: str, within_s: float = 15.0) -> tuple[list[bytes], set[int]]:
    """Read a topic from the beginning: the first values that arrive, or the error codes reported instead."""
    errors: set[int] = set()
    consumer = Consumer({**config, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "error_cb": lambda e: errors.add(e.code())})
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + within_s
    try:
        # A refusal by the authorizer is final: stop at the first.
        while time.monotonic() < deadline and not values and not errors & AUTHORIZATION_FAILED:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                errors.add(err.code())
                continue
            values.append(msg.value() or b"")
    finally:
        consumer.close()
    return values, errors


def _records_on(settings: Settings, topic: str) -> int:
    """How many records a topic holds (read as admin)."""
    consumer = Consumer(client_config(_as(settings, "admin"), {"group.id": f"count-{uuid.uuid4().hex}"}))
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    finally:
        consumer.close()


def _group(settings: Settings, identity: str) -> dict[str, str]:
    return {"group.id": f"{settings.group(identity)}-{uuid.uuid4().hex[:6]}"}


def test_a_client_without_credentials_can_neither_produce_nor_consume(ns: Settings) -> None:
    topic = ns.topic("goal.applied")
    assert _produce(producer_config(_as(ns, "operator")), topic)[0] is None  # something to read
    no_credentials = {"bootstrap.servers": ns.bootstrap}
    tls_only = {**no_credentials, "security.protocol": "SSL", "ssl.ca.location": str(SecureKafka.of(ns).ca)}
    for config in (no_credentials, tls_only):
        code, errors = _produce(config, topic)
        # The broker closes a connection that does not authenticate: nothing is ever acknowledged.
        assert code == KafkaError._MSG_TIMED_OUT and errors & {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
        values, errors = _consume({**config, "group.id": f"anon-{uuid.uuid4().hex}"}, topic, within_s=4)
        assert values == [] and errors & {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
    assert _records_on(ns, topic) == 1, "only the operator's record is on the topic"


def test_a_wrong_password_is_refused_as_an_authentication_error(ns: Settings) -> None:
    wrong = _as(ns, "trainer").replace(kafka_sasl_password="not-the-password")
    code, errors = _produce(producer_config(wrong), ns.topic("run.finished"))
    assert code == KafkaError._MSG_TIMED_OUT and KafkaError._AUTHENTICATION in errors
    assert _records_on(ns, ns.topic("run.finished")) == 0


def test_an_authenticated_user_without_grants_gets_topic_authorization_failed(ns: Settings) -> None:
    kafka = SecureKafka.of(ns)
    client = admin(_as(ns, "admin"))
    change = UserScramCredentialUpsertion("stranger", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"stranger-password")
    for future in client.alter_user_scram_credentials([change]).values():
        future.result(timeout=30)
    stranger = kafka.as_identity(ns, "operator").replace(kafka_sasl_username="stranger", kafka_sasl_password="stranger-password")
    # SCRAM credentials reach the listener through the metadata log: poll until the new user authenticates.
    outcome = wait_for(lambda: _authenticated(_produce(producer_config(stranger), ns.topic("dataset.published"))),
                       30, "the new SCRAM user to authenticate")
    assert outcome == (KafkaError.TOPIC_AUTHORIZATION_FAILED, set())
    # Reading: refused at its consumer group, and not one tuneline topic is even visible to it.
    values, errors = _consume(client_config(stranger, {"group.id": f"stranger-{uuid.uuid4().hex}"}), ns.topic("goal.applied"))
    assert values == [] and KafkaError.GROUP_AUTHORIZATION_FAILED in errors
    assert not [t for t in admin(stranger).list_topics(timeout=10).topics if "tuneline" in t]


def _authenticated(outcome: tuple[int | None, set[int]]) -> tuple[int | None, set[int]] | None:
    """A produce outcome once the client got past authentication (None while it is refused as unknown)."""
    return None if KafkaError._AUTHENTICATION in outcome[1] else outcome


@pytest.mark.parametrize(("identity", "event"), [("trainer", "eval.passed"), ("deployer", "eval.passed"), ("ingest", "goal.applied"),
                                                 ("evaluator", "rollback.requested"), ("operator", "run.finished")])
def test_an_identity_cannot_write_a_topic_it_does_not_own(ns: Settings, identity: str, event: str) -> None:
    code, _ = _produce(producer_config(_as(ns, identity)), ns.topic(event))
    assert code == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert _records_on(ns, ns.topic(event)) == 0


def test_the_trainer_writes_run_finished_and_the_evaluator_reads_it(ns: Settings) -> None:
    assert _produce(producer_config(_as(ns, "trainer")), ns.topic("run.finished")) == (None, set())
    evaluator = _as(ns, "evaluator")
    values, errors = _consume(client_config(evaluator, _group(ns, "evaluator")), ns.topic("run.finished"))
    assert values == [b"probe"], errors
    # ...but not what it does not consume, nor under a group that is not its own.
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in _consume(client_config(evaluator, _group(ns, "evaluator")),
                                                             ns.topic("inference.logged"))[1]
    _, errors = _consume(client_config(evaluator, _group(ns, "trainer")), ns.topic("run.finished"), within_s=5)
    assert KafkaError.GROUP_AUTHORIZATION_FAILED in errors


def test_a_faust_service_consumes_and_emits_as_its_own_identity(ns: Settings) -> None:
    """The probe service (goal.applied -> alert.raised, like the monitor) runs with the monitor's env file: a
    faust app (aiokafka, faust's credentials) and the outbox relay's producer, both over SASL_SSL."""
    grant_probe_group(ns)
    env = SecureKafka.of(ns).env("monitor")
    proc = start_process(python(str(PROBE)), ns, ns.state_dir / f"probe-{ns.namespace}log", **env)
    try:
        operator = _as(ns, "operator")
        msg = ev.GoalApplied(goal_name="secure-probe", goal_version="sha256:" + "0" * 64, goal_json="{}", applied_by="test")
        [event_id] = publish_now(operator, [Outgoing(msg, "secure-probe")], source="test/operator", signer="operator")
        values, errors = _consume(client_config(operator, {"group.id": f"watch-{uuid.uuid4().hex}"}), ns.topic("alert.raised"), 90)
        assert values, f"no alert.raised from the probe service ({errors}); see {ns.state_dir}"
        alert = ev.AlertRaised.FromString(values[0])
        assert alert.alert_id == event_id
    finally:
        stop_process(proc)


def grant_probe_group(settings: Settings) -> None:
    """The probe service's group is tuneline-probe: let the monitor identity use it for this test."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    binding = AclBinding(ResourceType.GROUP, settings.group("probe"), ResourcePatternType.PREFIXED, "User:monitor", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    client = admin(_as(settings, "admin"))
    for future in client.create_acls([binding]).values():
        future.result(timeout=30)


def test_a_rotated_password_replaces_the_old_one(ns: Settings) -> None:
    kafka = SecureKafka.of(ns)
    old = _as(ns, "operator")
    kafka.rotate(_as(ns, "admin"), "operator")
    new = _as(ns, "operator")
    assert new.kafka_sasl_password != old.kafka_sasl_password
    assert f"TUNELINE_KAFKA_SASL_PASSWORD={new.kafka_sasl_password}" in (kafka.folder / "operator.env").read_text()
    accepted = wait_for(lambda: _produce(producer_config(new), ns.topic("goal.applied"))[0] is None, 30, "the new password to work")
    assert accepted
    code, errors = _produce(producer_config(old), ns.topic("goal.applied"))
    assert code == KafkaError._MSG_TIMED_OUT and KafkaError._AUTHENTICATION in errors


def test_the_secure_broker_is_not_restarted_plaintext_and_reports_its_mode(secure: Settings) -> None:
    with pytest.raises(ConfigError, match="formatted SASL_SSL"):
        broker.start(secure)
    st = broker.status(secure)
    assert st.secure and st.answering, "status asks a secure broker with admin's credentials"
