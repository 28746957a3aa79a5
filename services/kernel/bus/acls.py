"""Who may write and read which Tuneline topic: the ACL table of a secure broker, and granting it.

Each service writes exactly the events it emits (plus dead letters, which every consumer may send)
and reads exactly the events it subscribes to (each service's `bootstrap.subscriptions`, checked by
tests/unit/kernel/test_kafka_security.py). `operator` is the CLI: it publishes what people decide
and reads the stream for `tuneline status` and the demo. `admin` is the broker's super user: it
creates the topics and the ACLs, and is never given to a service.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import cast

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from services.kernel.bus.topics import admin
from services.kernel.errors import TransientError
from services.kernel.events import DEADLETTER, EVENT_TYPES
from services.kernel.settings import Settings

ADMIN = "admin"
# The watch consumer (services/stack/watch.py) names its groups watch-<uuid>, outside any namespace.
WATCH_GROUP_PREFIX = "watch-"


@dataclass(frozen=True)
class Access:
    """What one identity may do on the bus: events it writes, events it reads, whether it has a consumer group."""

    writes: tuple[str, ...]
    reads: tuple[str, ...]
    consumer_group: bool = True
    # Describes the namespace's consumer groups (their committed offsets): the operator's `status` and
    # the monitor's consumer-lag metric.
    describes_groups: bool = False


ACCESS: dict[str, Access] = {
    "ingest": Access(writes=("dataset.registered", "dataset.rejected", DEADLETTER),
                     reads=("goal.applied", "dataset.published")),
    "trainer": Access(writes=("run.started", "run.finished", DEADLETTER),
                      reads=("goal.applied", "dataset.registered", "run.requested", "rollback.requested")),
    "evaluator": Access(writes=("eval.passed", "eval.failed", DEADLETTER),
                        reads=("run.finished", "goal.applied", "deployment.promoted", "deployment.rolled_back")),
    "deployer": Access(writes=("deployment.started", "deployment.promoted", "deployment.rolled_back", "deployment.approved",
                               "deployment.rejected", "deployment.held", "deployment.resumed", "inference.logged",
                               DEADLETTER),
                       reads=("goal.applied", "eval.passed", "rollback.requested", "drift.detected")),
    "monitor": Access(writes=("drift.detected", "rollback.requested", "alert.raised", "retention.applied", DEADLETTER),
                      reads=tuple(EVENT_TYPES), describes_groups=True),
    # The CLI and the demo: goals, published datasets, retraining and rollbacks that people ask for;
    # every event but the predictions' log for watching, and its services' groups' offsets for lag.
    "operator": Access(writes=("goal.applied", "dataset.published", "run.requested", "rollback.requested", "feedback.recorded"),
                       reads=tuple(e for e in EVENT_TYPES if e != "inference.logged"), consumer_group=False,
                       describes_groups=True),
}
IDENTITIES = tuple(ACCESS)
SERVICES = tuple(name for name, access in ACCESS.items() if access.consumer_group)


def _topic(settings: Settings, event: str, operation: AclOperation, principal: str) -> AclBinding:
    return AclBinding(ResourceType.TOPIC, settings.topic(event), ResourcePatternType.LITERAL, principal, "*",
                      operation, AclPermissionType.ALLOW)


def _group(name: str, operation: AclOperation, principal: str) -> AclBinding:
    return AclBinding(ResourceType.GROUP, name, ResourcePatternType.PREFIXED, principal, "*", operation, AclPermissionType.ALLOW)


def acl_bindings(settings: Settings, identity: str) -> list[AclBinding]:
    """The ALLOW bindings of one identity under the settings' namespace (topics are literal names)."""
    access, principal = ACCESS[identity], f"User:{identity}"
    # DESCRIBE on every topic of the namespace: metadata only (that it exists, its partitions and
    # offsets), so that a service's start-up check (ensure_topics) finds them all created by admin.
    bindings = [_topic(settings, e, AclOperation.DESCRIBE, principal) for e in EVENT_TYPES]
    bindings += [_topic(settings, e, AclOperation.WRITE, principal) for e in access.writes]
    bindings += [_topic(settings, e, AclOperation.READ, principal) for e in access.reads]
    if access.writes:
        # The idempotent producer's id; Kafka 4 also accepts WRITE on any topic, older brokers need this.
        bindings.append(AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, principal, "*",
                                   AclOperation.IDEMPOTENT_WRITE, AclPermissionType.ALLOW))
    if access.consumer_group:
        # The faust app's group is settings.group(service); the prefix admits its suffixed variants.
        bindings.append(_group(settings.group(identity), AclOperation.READ, principal))
    else:
        bindings.append(_group(WATCH_GROUP_PREFIX, AclOperation.READ, principal))
    if access.describes_groups:
        bindings.append(_group(settings.group(""), AclOperation.DESCRIBE, principal))
    return bindings


def grant(admin_settings: Settings, identities: Iterable[str] = IDENTITIES, timeout_s: float = 30.0) -> int:
    """Create the ACLs of `identities` under the namespace (idempotent); `admin_settings` must carry admin's credentials."""
    bindings = [b for identity in identities for b in acl_bindings(admin_settings, identity)]
    client = admin(admin_settings)  # held until every future is done: a collected client cancels them
    futures = client.create_acls(bindings, request_timeout=timeout_s)
    for binding, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as err:
            raise TransientError(f"could not create the ACL {binding}: {err}",
                                 hint="is the broker secure, and are these admin's credentials?") from err
    _wait_visible(client, bindings, timeout_s)
    return len(bindings)


def _wait_visible(client: AdminClient, bindings: list[AclBinding], timeout_s: float) -> None:
    """Poll until the broker describes every binding: the controller commits an ACL before the broker's
    authorizer replays it, and a client that connects in between is still refused."""
    # None matches any name, principal and host (confluent-kafka's documented filter); its stub types them str.
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
                                  AclOperation.ANY, AclPermissionType.ANY)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = cast("Future[list[AclBinding]]", client.describe_acls(everything, request_timeout=timeout_s))
        if set(bindings) <= set(described.result(timeout=timeout_s)):
            return
        time.sleep(0.1)
    raise TransientError(f"the broker did not show the new ACLs within {timeout_s:.0f}s")
