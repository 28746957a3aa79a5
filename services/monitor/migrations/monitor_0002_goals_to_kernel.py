"""The monitor's goals move to the kernel's goal tables (services.kernel.goals); its own goes.

The monitor stored goal.applied unchecked, so each version is recomputed from the goal's JSON
(sha256 of its canonical form, as services.kernel.goal does) and a row whose JSON is not a goal
is left behind.

Revision ID: monitor_0002
Revises: monitor_0001
"""

import hashlib
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from services.kernel.migrations.goal_copy import OldGoal, copy_goals

revision = "monitor_0002"
down_revision = "monitor_0001"
branch_labels = None
depends_on = "kernel_0002"

_old = sa.table("monitor_goals", sa.column("name"), sa.column("version"), sa.column("goal_json"))


def _checked(goal_json: str, applied_at: datetime) -> OldGoal | None:
    try:
        value = json.loads(goal_json)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return OldGoal(value["name"], "sha256:" + hashlib.sha256(canonical.encode()).hexdigest(), goal_json, applied_at)


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)   # the monitor kept no time: every goal counts as applied now
    found = [_checked(r.goal_json, now) for r in conn.execute(sa.select(_old))]
    copy_goals(conn, [g for g in found if g is not None])
    op.drop_table("monitor_goals")


def downgrade() -> None:
    # An empty table: the goals stay in the kernel's tables (the old code re-learns them from goal.applied).
    op.create_table(
        "monitor_goals",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(71), nullable=False),
        sa.Column("goal_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
