"""Alert incidents and their deliveries to sinks (services.monitor.alerting).

Revision ID: monitor_0004
Revises: monitor_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "monitor_0004"
down_revision = "monitor_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_incidents",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("goal_name", sa.String(300), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("report_uri", sa.Text(), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("opened_ms", sa.BigInteger(), nullable=False),
        sa.Column("resolved_ms", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_monitor_incidents_opened_ms", "monitor_incidents", ["opened_ms"])
    op.create_table(
        "monitor_alert_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("incident_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("sink_kind", sa.String(10), nullable=False),
        sa.Column("sink_url", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("next_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_ms", sa.BigInteger(), nullable=True),
        sa.Column("given_up", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
    )
    op.create_index("ix_monitor_alert_deliveries_due", "monitor_alert_deliveries", ["delivered_ms", "given_up", "next_ms"])


def downgrade() -> None:
    op.drop_index("ix_monitor_alert_deliveries_due", "monitor_alert_deliveries")
    op.drop_table("monitor_alert_deliveries")
    op.drop_index("ix_monitor_incidents_opened_ms", "monitor_incidents")
    op.drop_table("monitor_incidents")
