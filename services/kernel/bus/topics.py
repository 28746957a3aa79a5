"""Creating every `tuneline.*` topic, idempotently, with partitions and replication from settings."""

from __future__ import annotations

import logging
import socket
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from services.kernel.bus.security import client_config
from services.kernel.errors import TransientError
from services.kernel.events import EVENT_TYPES
from services.kernel.settings import Settings


def all_topics(settings: Settings) -> list[str]:
    """The names of every Tuneline topic under the settings' namespace."""
    return [settings.topic(name) for name in EVENT_TYPES]


_quiet = logging.getLogger("librdkafka.probe")
_quiet.setLevel(logging.CRITICAL)


def admin(settings: Settings, **kwargs: object) -> AdminClient:
    """An admin client for the configured cluster."""
    return AdminClient(client_config(settings), **kwargs)


def _port_open(bootstrap: str, timeout_s: float) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def broker_reachable(settings: Settings, timeout_s: float = 2.0) -> bool:
    """Whether the cluster answers a metadata request within the timeout."""
    if not _port_open(settings.bootstrap, timeout_s):
        return False
    try:
        admin(settings, logger=_quiet).list_topics(timeout=timeout_s)
        return True
    except KafkaException:
        return False


def brokers_registered(settings: Settings, timeout_s: float = 2.0) -> int:
    """How many brokers the cluster's metadata lists now (0 when it does not answer)."""
    try:
        return len(admin(settings, logger=_quiet).list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return 0


def topic_config(settings: Settings, topic: str) -> dict[str, str]:
    """A new topic's configuration: durability from the replication, retention for the predictions' log."""
    config = {}
    if settings.replication >= 3:
        # Three replicas: an acknowledged event is on two of them, so one broker lost loses nothing.
        config["min.insync.replicas"] = "2"
    if topic == settings.topic("inference.logged"):
        # Logged text is personal data: the bus keeps it no longer than this (goals can only ask for more).
        config["retention.ms"] = str(settings.inference_log_retention_days * 86_400_000)
    return config


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create the missing Tuneline topics; returns the names created now (empty when all existed)."""
    client = admin(settings)
    try:
        existing = set(client.list_topics(timeout=10).topics)
    except KafkaException as err:
        raise TransientError(f"Kafka at {settings.bootstrap} did not answer: {err}", hint="tuneline kafka start") from err
    wanted = [t for t in all_topics(settings) if t not in existing]
    if not wanted:
        return []
    futures = client.create_topics(
        [NewTopic(t, num_partitions=settings.kafka_partitions, replication_factor=settings.replication,
                  config=topic_config(settings, t)) for t in wanted],
        operation_timeout=timeout_s,
    )
    for topic, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
        except KafkaException as err:
            if "TOPIC_ALREADY_EXISTS" not in str(err):
                raise TransientError(f"could not create {topic}: {err}") from err
    _wait_for_metadata(client, wanted, timeout_s)
    return wanted


def align_topic_configs(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Give existing topics the configuration a new one would get (`topic_config`); returns those changed.

    A topic keeps the configuration it was created with, so a shorter `inference_log_retention_days`
    set later would otherwise never reach the bus. Needs the right to alter topic configs (the
    management identity's): services do not call it.
    """
    client = admin(settings)
    wanted = {t: c for t in all_topics(settings) if (c := topic_config(settings, t))}
    try:
        existing = set(client.list_topics(timeout=10).topics)
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in wanted if t in existing]
        if not resources:
            return []
        current = {r.name: {k: e.value for k, e in fut.result(timeout=timeout_s).items()}
                   for r, fut in client.describe_configs(resources, request_timeout=timeout_s).items()}
        changes = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
                       ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in wanted[t].items()])
                   for t in sorted(current) if any(current[t].get(k) != v for k, v in wanted[t].items())]
        if changes:
            for fut in client.incremental_alter_configs(changes, request_timeout=timeout_s).values():
                fut.result(timeout=timeout_s)
    except KafkaException as err:
        raise TransientError(f"could not align the topics' configuration on {settings.bootstrap}: {err}",
                             hint="run `tuneline kafka topics` again as the cluster's admin") from err
    return [r.name for r in changes]


def _wait_for_metadata(client: AdminClient, topics: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        md = client.list_topics(timeout=5).topics
        if all(t in md and md[t].partitions and not md[t].error for t in topics):
            return
        time.sleep(0.1)
    raise TransientError(f"topics not visible after {timeout_s}s: {topics}")
