"""The evaluator's first tables: goals, runs waiting for evaluation, adapters, champions, decisions.

Revision ID: evaluator_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "evaluator_0001"
down_revision = None
branch_labels = ("evaluator",)
depends_on = "kernel_0001"
# What the pre-alembic runner called this schema (services.kernel.migrations adopts such stores).
legacy_name = "evaluator-0001-tables"


def upgrade() -> None:
    op.create_table(
        "evaluator_adapters",
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_table(
        "evaluator_champions",
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("goal_name"),
    )
    op.create_table(
        "evaluator_evals",
        sa.Column("eval_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("adapter_digest", sa.String(80), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("outcome", sa.LargeBinary(), nullable=False),
        sa.Column("report_json_uri", sa.Text(), nullable=False),
        sa.Column("report_html_uri", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eval_id"),
        sa.UniqueConstraint("run_id"),
    )
    op.create_index("ix_evaluator_evals_goal_name", "evaluator_evals", ["goal_name"])
    op.create_table(
        "evaluator_goals",
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("goal_json", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("ix_evaluator_goals_name", "evaluator_goals", ["name"])
    op.create_table(
        "evaluator_requests",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("eval_id", sa.String(64), nullable=False),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("goal_version", sa.String(80), nullable=False),
        sa.Column("run_finished", sa.LargeBinary(), nullable=False),
        sa.Column("traceparent", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
        sa.UniqueConstraint("eval_id"),
    )
    op.create_index("ix_evaluator_requests_goal_version", "evaluator_requests", ["goal_version"])


def downgrade() -> None:
    op.drop_table("evaluator_requests")
    op.drop_table("evaluator_goals")
    op.drop_table("evaluator_evals")
    op.drop_table("evaluator_champions")
    op.drop_table("evaluator_adapters")
