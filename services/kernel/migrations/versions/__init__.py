"""The kernel branch of alembic revisions (one file each, applied in `down_revision` order)."""
