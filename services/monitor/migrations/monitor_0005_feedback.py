"""Ground truth: feedback joined to predictions, live accuracy windows, evaluated accuracies (services.monitor.feedback).

Revision ID: monitor_0005
Revises: monitor_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "monitor_0005"
down_revision = "monitor_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_evaluated",
        sa.Column("adapter_digest", sa.String(71), primary_key=True),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("eval_id", sa.String(64), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
    )
    op.create_table(
        "monitor_feedback",
        sa.Column("feedback_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("matched_ms", sa.BigInteger(), nullable=True),
        sa.Column("adapter_digest", sa.String(71), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("window_index", sa.Integer(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=False),
    )
    op.create_index("ix_monitor_feedback_request_id", "monitor_feedback", ["request_id"])
    op.create_index("ix_monitor_feedback_unmatched", "monitor_feedback", ["matched_ms", "received_ms"])
    op.create_index("ix_monitor_feedback_window", "monitor_feedback", ["goal_name", "adapter_digest", "window_index"])
    op.create_table(
        "monitor_accuracy_state",
        sa.Column("goal_name", sa.String(100), primary_key=True),
        sa.Column("adapter_digest", sa.String(71), primary_key=True),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(64), nullable=False),
    )
    op.create_table(
        "monitor_accuracy_windows",
        sa.Column("goal_name", sa.String(100), primary_key=True),
        sa.Column("adapter_digest", sa.String(71), primary_key=True),
        sa.Column("index", sa.Integer(), primary_key=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("evaluated", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("ece", sa.Float(), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("closed_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("monitor_accuracy_windows")
    op.drop_table("monitor_accuracy_state")
    op.drop_index("ix_monitor_feedback_window", "monitor_feedback")
    op.drop_index("ix_monitor_feedback_unmatched", "monitor_feedback")
    op.drop_index("ix_monitor_feedback_request_id", "monitor_feedback")
    op.drop_table("monitor_feedback")
    op.drop_table("monitor_evaluated")
