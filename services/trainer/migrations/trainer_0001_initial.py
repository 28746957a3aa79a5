"""The trainer's first tables: goals and datasets it has seen, and its runs.

Revision ID: trainer_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "trainer_0001"
down_revision = None
branch_labels = ("trainer",)
depends_on = "kernel_0001"
# What the pre-alembic runner called this schema (services.kernel.migrations adopts such stores).
legacy_name = "trainer-0001-goals-datasets-runs"


def upgrade() -> None:
    op.create_table(
        "trainer_datasets",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("dataset_json", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "version"),
    )
    op.create_index("ix_trainer_datasets_registered_at", "trainer_datasets", ["registered_at"])
    op.create_table(
        "trainer_goals",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("goal_json", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "trainer_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("goal_version", sa.String(80), nullable=False),
        sa.Column("dataset_name", sa.String(200), nullable=False),
        sa.Column("dataset_version", sa.String(80), nullable=False),
        sa.Column("trigger", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("adapter_digest", sa.String(80), nullable=False),
        sa.Column("adapter_uri", sa.Text(), nullable=False),
        sa.Column("envelope_digest", sa.String(80), nullable=False),
        sa.Column("envelope_uri", sa.Text(), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("curve_json", sa.Text(), nullable=False),
        sa.Column("wall_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trainer_runs_goal_name", "trainer_runs", ["goal_name"])
    op.create_index("ix_trainer_runs_job_id", "trainer_runs", ["job_id"])


def downgrade() -> None:
    op.drop_table("trainer_runs")
    op.drop_table("trainer_goals")
    op.drop_table("trainer_datasets")
