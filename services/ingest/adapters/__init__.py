"""Ingest adapters: one technology each (streaming readers, Parquet snapshots, staging files)."""
