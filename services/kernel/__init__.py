"""Tuneline's shared kernel: settings, event contracts and codec, the Kafka bus, stores, blobs,
ledger hashing and telemetry. The kernel imports no service."""
