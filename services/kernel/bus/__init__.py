"""The Kafka bus: idempotent producer, topics, consumers with inbox/outbox, dead letters."""
