"""Rows buffered for the whole transaction and inserted with one executemany just before it commits.

The kernel calls a handler once per event, inside one transaction per batch of up to 500 events;
one INSERT statement per event costs ~1 ms of SQLAlchemy overhead, which would cap ingest far below
10k events/s (K1). Handlers append plain row dicts here instead; the inserts run once per batch.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Session

_BUFFERS = "monitor.buffers"

Row = dict[str, Any]  # column name -> value, as Core's insert().values() takes it


def buffered(session: Session, table: type[DeclarativeBase]) -> list[Row]:
    """The rows waiting to be inserted into `table` when this session's transaction commits."""
    buffers: dict[type[DeclarativeBase], list[Row]] | None = session.info.get(_BUFFERS)
    if buffers is None:
        buffers = session.info[_BUFFERS] = {}
        sa.event.listen(session, "before_commit", flush_buffers)
    return buffers.setdefault(table, [])


def flush_buffers(session: Session) -> None:
    """Insert every buffered row now, in the order the tables were first used."""
    buffers: dict[type[DeclarativeBase], list[Row]] = session.info.get(_BUFFERS, {})
    for table, rows in buffers.items():
        if rows:
            session.execute(cast(sa.Table, table.__table__).insert(), rows)  # Core executemany: no ORM bookkeeping
            rows.clear()
