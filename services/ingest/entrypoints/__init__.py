"""Ingest entrypoints: the CLI commands."""
