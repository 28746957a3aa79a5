"""The trainer branch of alembic revisions (services.kernel.migrations runs them)."""
