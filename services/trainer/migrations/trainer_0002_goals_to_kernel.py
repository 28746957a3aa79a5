"""The trainer's goals move to the kernel's goal tables (services.kernel.goals); its own goes.

Revision ID: trainer_0002
Revises: trainer_0001
"""

import sqlalchemy as sa
from alembic import op

from services.kernel.migrations.goal_copy import OldGoal, copy_goals

revision = "trainer_0002"
down_revision = "trainer_0001"
branch_labels = None
depends_on = "kernel_0002"

_old = sa.table("trainer_goals", sa.column("name"), sa.column("version"), sa.column("goal_json"),
                sa.column("applied_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_old))
    copy_goals(conn, [OldGoal(r.name, r.version, r.goal_json, r.applied_at) for r in rows])
    op.drop_table("trainer_goals")


def downgrade() -> None:
    # An empty table: the goals stay in the kernel's tables (the old code re-learns them from goal.applied).
    op.create_table(
        "trainer_goals",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("goal_json", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
