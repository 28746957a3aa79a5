"""The monitor: the audit ledger of every event, drift windows that act, alerts for ops, lineage."""
