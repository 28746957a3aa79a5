"""Consumer lag: how far each of the namespace's consumer groups is behind the end of the Tuneline topics.

Read from the committed offsets and the partitions' high watermarks (what `tuneline status` prints and
the monitor exports as `tuneline.bus.consumer.lag`); a partition a group never committed counts 0.
"""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.kernel.bus.security import client_config
from services.kernel.bus.topics import admin, all_topics
from services.kernel.settings import Settings


def group_lag(settings: Settings, group: str, topics: list[str], timeout_s: float = 5.0) -> int:
    """Events on `topics` after the group's committed offsets."""
    consumer = Consumer(client_config(settings, {"group.id": group, "enable.auto.commit": False}))
    try:
        md = consumer.list_topics(timeout=timeout_s).topics
        parts = [TopicPartition(t, p) for t in topics if t in md for p in md[t].partitions]
        lag = 0
        for tp in consumer.committed(parts, timeout=timeout_s):
            if tp.offset < 0:
                continue
            _, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
            lag += max(0, high - tp.offset)
        return lag
    finally:
        consumer.close()


def namespace_groups(settings: Settings, timeout_s: float = 5.0) -> list[str]:
    """The consumer groups of this namespace's services (KafkaException when the broker does not answer)."""
    client = admin(settings)  # held until the future is done: a collected client cancels it
    listed = client.list_consumer_groups(request_timeout=timeout_s).result()
    if listed.errors and not listed.valid:
        raise KafkaException(listed.errors[0])
    groups = [g.group_id for g in listed.valid]
    prefix = settings.group("")
    return sorted(g for g in groups if g.startswith(prefix))


def consumer_lag(settings: Settings) -> dict[str, int]:
    """Every namespace group's lag over all Tuneline topics."""
    topics = all_topics(settings)
    return {group: group_lag(settings, group, topics) for group in namespace_groups(settings)}
