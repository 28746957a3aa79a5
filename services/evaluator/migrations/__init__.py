"""The evaluator branch of alembic revisions (services.kernel.migrations runs them)."""
