"""The ingest branch of alembic revisions (services.kernel.migrations runs them)."""
