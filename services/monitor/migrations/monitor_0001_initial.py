"""The monitor's first tables: the ledger and its index, goals, references, deployments, windows, drift state.

Revision ID: monitor_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "monitor_0001"
down_revision = None
branch_labels = ("monitor",)
depends_on = "kernel_0001"
# What the pre-alembic runner called this schema (services.kernel.migrations adopts such stores).
legacy_name = "monitor-0001-initial"


def upgrade() -> None:
    op.create_table(
        "monitor_deployments",
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("adapter_digest", sa.String(71), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("promoted_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("goal_name", "adapter_digest"),
    )
    op.create_table(
        "monitor_drift_state",
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("adapter_digest", sa.String(71), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("consecutive", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("breach_open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("goal_name", "adapter_digest"),
    )
    op.create_table(
        "monitor_goals",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(71), nullable=False),
        sa.Column("goal_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "monitor_ledger",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("ce_id", sa.String(64), nullable=False),
        sa.Column("ce_type", sa.String(100), nullable=False),
        sa.Column("headers_json", sa.Text(), nullable=False),
        sa.Column("payload_digest", sa.String(71), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("prev_hash", sa.String(71), nullable=False),
        sa.Column("hash", sa.String(71), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("ce_id"),
        sa.UniqueConstraint("prev_hash"),
    )
    op.create_table(
        "monitor_lineage_keys",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("key", "seq"),
    )
    op.create_table(
        "monitor_references",
        sa.Column("adapter_digest", sa.String(71), nullable=False),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("eval_id", sa.String(64), nullable=False),
        sa.Column("table_digest", sa.String(71), nullable=False),
        sa.Column("table_uri", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("adapter_digest"),
    )
    op.create_table(
        "monitor_rollbacks",
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("adapter_digest", sa.String(71), nullable=False),
        sa.Column("requested_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    op.create_index("ix_monitor_rollbacks_goal_name", "monitor_rollbacks", ["goal_name"])
    op.create_table(
        "monitor_window_rows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("adapter_digest", sa.String(71), nullable=False),
        sa.Column("served_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("features_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitor_window_rows_adapter_digest", "monitor_window_rows", ["adapter_digest"])
    op.create_index("ix_monitor_window_rows_goal_name", "monitor_window_rows", ["goal_name"])
    op.create_table(
        "monitor_windows",
        sa.Column("goal_name", sa.String(100), nullable=False),
        sa.Column("adapter_digest", sa.String(71), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=False),
        sa.Column("verdict_digest", sa.String(71), nullable=False),
        sa.Column("verdict_uri", sa.Text(), nullable=False),
        sa.Column("report_digest", sa.String(71), nullable=False),
        sa.Column("report_uri", sa.Text(), nullable=False),
        sa.Column("span_ms", sa.BigInteger(), nullable=False),
        sa.Column("drift_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("goal_name", "adapter_digest", "index"),
    )


def downgrade() -> None:
    op.drop_table("monitor_windows")
    op.drop_table("monitor_window_rows")
    op.drop_table("monitor_rollbacks")
    op.drop_table("monitor_references")
    op.drop_table("monitor_lineage_keys")
    op.drop_table("monitor_ledger")
    op.drop_table("monitor_goals")
    op.drop_table("monitor_drift_state")
    op.drop_table("monitor_deployments")
