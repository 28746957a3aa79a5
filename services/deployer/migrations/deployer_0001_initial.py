"""The deployer's first tables: goals in force, rollout states, the current step's progress.

Revision ID: deployer_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "deployer_0001"
down_revision = None
branch_labels = ("deployer",)
depends_on = "kernel_0001"
# What the pre-alembic runner called this schema (services.kernel.migrations adopts such stores).
legacy_name = "deployer-0001-goals-rollouts-progress"


def upgrade() -> None:
    op.create_table(
        "deployer_goals",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("goal_json", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "deployer_progress",
        sa.Column("goal", sa.String(100), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("stats_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("goal"),
    )
    op.create_table(
        "deployer_rollouts",
        sa.Column("goal", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("rollout_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("goal"),
    )


def downgrade() -> None:
    op.drop_table("deployer_rollouts")
    op.drop_table("deployer_progress")
    op.drop_table("deployer_goals")
