"""Retention of logged text: each ledger record keeps its subject and event time, and what deleted its text.

`subject` and `event_ms` come from the record's own CloudEvents headers (`ce_subject`, `ce_time`), which
the chain covers; existing records are filled in from their stored headers. `purged_by` is the sequence
of the `retention.applied` record that removed the text (services.monitor.retention).

Revision ID: monitor_0003
Revises: monitor_0002
"""

import json
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "monitor_0003"
down_revision = "monitor_0002"
branch_labels = None
depends_on = None

_ledger = sa.table("monitor_ledger", sa.column("seq", sa.BigInteger), sa.column("headers_json", sa.Text),
                   sa.column("subject", sa.String), sa.column("event_ms", sa.BigInteger))


def _subject_and_ms(headers_json: str) -> tuple[str, int | None]:
    headers = {h["k"]: h.get("v", "") for h in json.loads(headers_json)}
    try:
        when = datetime.fromisoformat(headers.get("ce_time", "").replace("Z", "+00:00"))
        ms: int | None = int(when.timestamp() * 1000)
    except ValueError:
        ms = None
    return headers.get("ce_subject", ""), ms


def upgrade() -> None:
    op.add_column("monitor_ledger", sa.Column("subject", sa.String(300), nullable=True))
    op.add_column("monitor_ledger", sa.Column("event_ms", sa.BigInteger(), nullable=True))
    op.add_column("monitor_ledger", sa.Column("purged_by", sa.BigInteger(), nullable=True))
    op.create_index("ix_monitor_ledger_retention", "monitor_ledger", ["ce_type", "subject", "event_ms"])
    conn = op.get_bind()
    after = 0
    while True:
        rows = conn.execute(sa.select(_ledger.c.seq, _ledger.c.headers_json).where(_ledger.c.seq > after)
                            .order_by(_ledger.c.seq).limit(2000)).all()
        if not rows:
            return
        for seq, headers_json in rows:
            subject, ms = _subject_and_ms(headers_json)
            conn.execute(_ledger.update().where(_ledger.c.seq == seq).values(subject=subject, event_ms=ms))
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_monitor_ledger_retention", "monitor_ledger")
    for column in ("purged_by", "event_ms", "subject"):
        op.drop_column("monitor_ledger", column)
