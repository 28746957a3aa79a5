"""The monitor branch of alembic revisions (services.kernel.migrations runs them)."""
