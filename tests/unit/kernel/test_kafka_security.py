"""Kafka security without a broker: settings -> client configs, the ACL table against what the services
really subscribe to and emit, the secure broker's credential files, and the mode guard."""

from __future__ import annotations

import re
import ssl
import stat
from pathlib import Path
from typing import cast

import faust
import pytest
from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType, ResourceType
from cryptography import x509

from services.kernel import broker
from services.kernel.broker_security import SecureKafka
from services.kernel.bus.acls import ACCESS, IDENTITIES, SERVICES, acl_bindings
from services.kernel.bus.producer import producer_config
from services.kernel.bus.security import client_config, faust_credentials, librdkafka_config, ssl_context
from services.kernel.errors import ConfigError
from services.kernel.events import DEADLETTER, EVENT_TYPES
from services.kernel.settings import Settings

REPO = Path(__file__).resolve().parents[3]
_NAME_OF_MESSAGE = {cls.__name__: name for name, cls in EVENT_TYPES.items()}


@pytest.fixture
def plain(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", kafka_bootstrap="", kafka_security_protocol="", kafka_sasl_mechanism="",
                    kafka_sasl_username="", kafka_sasl_password="", kafka_ssl_ca_location=None,
                    kafka_ssl_certificate_location=None, kafka_ssl_key_location=None)


@pytest.fixture
def kafka(plain: Settings) -> SecureKafka:
    secure = SecureKafka.of(plain)
    secure.prepare()
    return secure


# ---------------------------------------------------------------- client configs
def test_plaintext_settings_add_nothing_to_any_client_config(plain: Settings) -> None:
    assert librdkafka_config(plain) == {}
    assert client_config(plain) == {"bootstrap.servers": "127.0.0.1:9092"}
    assert producer_config(plain) == {"bootstrap.servers": "127.0.0.1:9092", "enable.idempotence": True, "acks": "all",
                                      "linger.ms": 2, "compression.type": "none", "message.timeout.ms": 30000,
                                      "client.id": "tuneline-producer"}
    assert faust_credentials(plain) is None and ssl_context(plain) is None


def test_each_set_setting_maps_to_librdkafkas_name(plain: Settings, tmp_path: Path) -> None:
    s = plain.replace(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="trainer",
                      kafka_sasl_password="pw", kafka_ssl_ca_location=tmp_path / "ca.pem",
                      kafka_ssl_certificate_location=tmp_path / "c.pem", kafka_ssl_key_location=tmp_path / "k.pem")
    assert librdkafka_config(s) == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "trainer",
                                    "sasl.password": "pw", "ssl.ca.location": str(tmp_path / "ca.pem"),
                                    "ssl.certificate.location": str(tmp_path / "c.pem"), "ssl.key.location": str(tmp_path / "k.pem")}
    config = producer_config(s, **{"linger.ms": 5})
    assert config["sasl.username"] == "trainer" and config["linger.ms"] == 5 and config["enable.idempotence"] is True
    assert client_config(s, {"group.id": "g"})["security.protocol"] == "SASL_SSL"


def test_faust_gets_scram_over_tls_with_the_ca(kafka: SecureKafka, plain: Settings) -> None:
    creds = faust_credentials(kafka.as_identity(plain, "evaluator"))
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.protocol.value, creds.mechanism.value, creds.username) == ("SASL_SSL", "SCRAM-SHA-512", "evaluator")
    assert creds.password == kafka.password("evaluator")
    assert creds.ssl_context is not None and creds.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert creds.ssl_context.check_hostname
    tls = faust_credentials(plain.replace(kafka_security_protocol="SSL", kafka_ssl_ca_location=kafka.ca))
    assert isinstance(tls, faust.SSLCredentials)


@pytest.mark.parametrize(("protocol", "mechanism"), [("SASL_SSSL", ""), ("SASL_SSL", "SCRAM-SHA-1")])
def test_a_misspelt_protocol_or_mechanism_is_a_config_error(plain: Settings, protocol: str, mechanism: str) -> None:
    with pytest.raises(ConfigError):
        faust_credentials(plain.replace(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism))


# ---------------------------------------------------------------- the ACL table against the code
def _subscribed(service: str, tmp_path: Path) -> set[str]:
    from services.deployer import bootstrap as deployer
    from services.deployer.controller import Controller
    from services.evaluator import bootstrap as evaluator
    from services.ingest import bootstrap as ingest
    from services.monitor import bootstrap as monitor
    from services.monitor.settings import MonitorSettings
    from services.monitor.windows import Blobs, WindowDeps
    from services.trainer import bootstrap as trainer

    subs = {"ingest": ingest.subscriptions, "trainer": trainer.subscriptions, "evaluator": evaluator.subscriptions,
            "deployer": lambda: deployer.subscriptions(cast(Controller, object())),
            "monitor": lambda: monitor.subscriptions(MonitorSettings(state_dir=tmp_path), WindowDeps(blobs=cast(Blobs, object())))}
    return {sub.event for sub in subs[service]()}


def _constructed(paths: list[Path]) -> set[str]:
    """The events whose messages these modules build (`ev.RunFinished(`...)."""
    found = {m for p in paths for m in re.findall(r"\bev\.([A-Z]\w+)\(", p.read_text())}
    return {_NAME_OF_MESSAGE[m] for m in found if m in _NAME_OF_MESSAGE}


def _service_modules(service: str) -> list[Path]:
    # A service's CLI modules (entrypoints/cli.py, entrypoints/*_cli.py) run as the operator (they publish
    # what a person decided or knows), not as the service.
    root = REPO / "services" / service
    return [p for p in root.rglob("*.py") if not p.relative_to(root).match("entrypoints/*cli.py")]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_reads_exactly_what_it_subscribes_to(service: str, tmp_path: Path) -> None:
    assert set(ACCESS[service].reads) == _subscribed(service, tmp_path)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_writes_exactly_what_it_emits_and_dead_letters(service: str) -> None:
    assert set(ACCESS[service].writes) == _constructed(_service_modules(service)) | {DEADLETTER}


def test_the_operator_may_publish_what_the_clis_and_the_demo_publish_and_no_service_decision() -> None:
    clis = list((REPO / "services").glob("*/entrypoints/cli.py")) + list((REPO / "services" / "stack").rglob("*.py"))
    writes = set(ACCESS["operator"].writes)
    assert _constructed(clis) <= writes
    assert not writes & {"run.finished", "eval.passed", "eval.failed", "deployment.promoted", "drift.detected", DEADLETTER}


def test_bindings_are_literal_topics_of_the_namespace_and_prefixed_groups(plain: Settings) -> None:
    s = plain.replace(namespace="t42.")
    bindings = acl_bindings(s, "trainer")
    assert all(b.principal == "User:trainer" and b.permission_type == AclPermissionType.ALLOW for b in bindings)
    topics = [b for b in bindings if b.restype == ResourceType.TOPIC]
    assert all(b.resource_pattern_type == ResourcePatternType.LITERAL and b.name.startswith("t42.tuneline.") for b in topics)
    writes = {b.name for b in topics if b.operation == AclOperation.WRITE}
    assert writes == {"t42.tuneline.run.started", "t42.tuneline.run.finished", "t42.tuneline.deadletter"}
    assert {b.name for b in topics if b.operation == AclOperation.DESCRIBE} == {s.topic(e) for e in EVENT_TYPES}
    groups = [(b.name, b.operation, b.resource_pattern_type) for b in bindings if b.restype == ResourceType.GROUP]
    assert groups == [("t42.tuneline-trainer", AclOperation.READ, ResourcePatternType.PREFIXED)]


def test_the_operator_reads_no_predictions_and_sees_only_its_services_groups_offsets(plain: Settings) -> None:
    bindings = acl_bindings(plain.replace(namespace="t42."), "operator")
    reads = {b.name for b in bindings if b.restype == ResourceType.TOPIC and b.operation == AclOperation.READ}
    assert "t42.tuneline.inference.logged" not in reads and "t42.tuneline.goal.applied" in reads
    groups = {(b.name, b.operation) for b in bindings if b.restype == ResourceType.GROUP}
    assert groups == {("watch-", AclOperation.READ), ("t42.tuneline-", AclOperation.DESCRIBE)}


# ---------------------------------------------------------------- the credentials folder
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_prepare_makes_private_credentials_once(kafka: SecureKafka, plain: Settings) -> None:
    assert _mode(kafka.folder) == 0o700
    for name in ("ca.key", "broker.pem", "passwords.json", *(f"{i}.env" for i in ("admin", *IDENTITIES))):
        assert _mode(kafka.folder / name) == 0o600, name
    before = {i: kafka.password(i) for i in ("admin", *IDENTITIES)}
    assert len(set(before.values())) == len(before), "each identity has its own password"
    SecureKafka.of(plain).prepare()
    assert {i: kafka.password(i) for i in before} == before, "a second prepare replaces nothing"
    env = dict(line.split("=", 1) for line in (kafka.folder / "ingest.env").read_text().splitlines())
    assert env == {"TUNELINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TUNELINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                   "TUNELINE_KAFKA_SASL_USERNAME": "ingest", "TUNELINE_KAFKA_SASL_PASSWORD": before["ingest"],
                   "TUNELINE_KAFKA_SSL_CA_LOCATION": str(kafka.ca)}
    assert f"SCRAM-SHA-512=[name=ingest,password={before['ingest']}]" in kafka.scram_args()


def test_the_broker_certificate_is_the_cas_and_names_loopback(kafka: SecureKafka) -> None:
    ca = x509.load_pem_x509_certificate(kafka.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(kafka.keystore.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert b"BEGIN PRIVATE KEY" in kafka.keystore.read_bytes()
    # Clients verify the broker with this CA: the context loads it and checks host names.
    assert ssl_context(SecureKafka(kafka.folder).as_identity(Settings(kafka_bootstrap=""), "operator")) is not None


def test_the_secure_config_overrides_the_listeners_and_names_the_super_users(kafka: SecureKafka, plain: Settings) -> None:
    text = kafka.server_properties(plain.replace(kafka_port=1234, kafka_controller_port=1235))
    assert "listeners=SECURE://127.0.0.1:1234,CONTROLLER://127.0.0.1:1235" in text
    assert "listener.security.protocol.map=SECURE:SASL_SSL,CONTROLLER:SSL" in text
    assert "allow.everyone.if.no.acl.found=false" in text and "super.users=User:admin;User:CN=tuneline-broker" in text


# ---------------------------------------------------------------- the mode is part of the broker's state
def _formatted(settings: Settings, mode: str | None) -> None:
    data = settings.state_dir / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=x\n")
    if mode:
        (settings.state_dir / "kafka" / "security").write_text(mode)


def test_a_plaintext_broker_is_never_started_secure(plain: Settings) -> None:
    _formatted(plain, None)
    with pytest.raises(ConfigError, match="formatted PLAINTEXT"):
        broker.start(plain, secure=True)
    assert not (plain.state_dir / "kafka-secure").exists(), "refused before anything was made"


def test_a_secure_broker_is_never_started_plaintext(plain: Settings) -> None:
    _formatted(plain, "SASL_SSL")
    with pytest.raises(ConfigError, match="formatted SASL_SSL"):
        broker.start(plain)
    assert broker.is_secure(plain)
