"""Pure ingest rules: row parsing, URI confinement, PII, dedup, leakage, label sanity, splits, certificates."""
