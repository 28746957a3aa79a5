"""The ingest's first tables: goals by dataset name, and registered dataset versions.

Revision ID: ingest_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0001"
down_revision = None
branch_labels = ("ingest",)
depends_on = "kernel_0001"
# What the pre-alembic runner called this schema (services.kernel.migrations adopts such stores).
legacy_name = "ingest-0001-goals-registrations"


def upgrade() -> None:
    op.create_table(
        "ingest_goals",
        sa.Column("dataset_name", sa.String(200), nullable=False),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("goal_version", sa.String(80), nullable=False),
        sa.Column("goal_json", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_name"),
    )
    op.create_table(
        "ingest_registrations",
        sa.Column("dataset_name", sa.String(200), nullable=False),
        sa.Column("dataset_version", sa.String(80), nullable=False),
        sa.Column("published_event_id", sa.String(64), nullable=False),
        sa.Column("registered", sa.LargeBinary(), nullable=False),
        sa.Column("labels_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_name", "dataset_version"),
    )
    op.create_index("ix_ingest_registrations_published_event_id", "ingest_registrations", ["published_event_id"])


def downgrade() -> None:
    op.drop_table("ingest_registrations")
    op.drop_table("ingest_goals")
