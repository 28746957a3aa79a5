"""The probe service's one table: an effect row per event handled.

Revision ID: probe_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "probe_0001"
down_revision = None
branch_labels = ("probe",)
depends_on = "kernel_0001"


def upgrade() -> None:
    op.create_table(
        "probe_effects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("goal_name", sa.String(200), nullable=False),
        sa.Column("traceparent", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
