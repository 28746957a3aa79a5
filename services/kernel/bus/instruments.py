"""The bus's instruments (docs/metrics.md), shared by every service: processing time, retries and dead
letters per consumer, messages sent and the outbox backlog per relay."""

from __future__ import annotations

from services.kernel.metrics import GaugeSet, meter

PROCESS_DURATION = meter().create_histogram(
    "messaging.process.duration", unit="s", description="Time to process a batch of records in one transaction")
RETRIES = meter().create_counter("tuneline.bus.retries", unit="{attempt}",
                                 description="Transactions retried after a transient error, by consumer and event")
DEAD_LETTERS = meter().create_counter("tuneline.bus.dead_letters", unit="{record}",
                                      description="Records a consumer gave up on and sent to the dead-letter topic")
SENT = meter().create_counter("messaging.client.sent.messages", unit="{message}",
                              description="Events the outbox relay published, by topic")
BACKLOG = GaugeSet("tuneline.bus.outbox.backlog", "{event}", "Outbox rows not yet published (counted up to 100,000)")
BACKLOG_COUNT_LIMIT = 100_000


def declare_consumer(consumer: str, event: str) -> None:
    """Export a consumer's retry and dead-letter counters at zero from its start (dashboards and alerts see them)."""
    attrs = {"consumer": consumer, "event": event}
    RETRIES.add(0, attrs)
    DEAD_LETTERS.add(0, attrs)
