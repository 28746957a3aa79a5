"""Applied goals, kept by the kernel in every store: each version once, and the version in force per name.

Revision ID: kernel_0002
Revises: kernel_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "kernel_0002"
down_revision = "kernel_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tuneline_goal_versions",
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("goal_json", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("ix_tuneline_goal_versions_name", "tuneline_goal_versions", ["name"])
    op.create_table(
        "tuneline_goals",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.ForeignKeyConstraint(["version"], ["tuneline_goal_versions.version"]),
    )


def downgrade() -> None:
    op.drop_table("tuneline_goals")
    op.drop_table("tuneline_goal_versions")
