"""For the service revisions that retire a service's own goal table: copy its rows into the kernel's.

It writes the goal tables as revision kernel_0002 made them, so a service revision that calls it
depends on kernel_0002. A later kernel revision that adds a NOT NULL column to them gives it a
server default, or these copies (run on stores made before the kernel kept goals) would fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa

_versions = sa.table("tuneline_goal_versions", sa.column("version"), sa.column("name"), sa.column("goal_json"),
                     sa.column("applied_at", sa.DateTime(timezone=True)))
_in_force = sa.table("tuneline_goals", sa.column("name"), sa.column("version"),
                     sa.column("applied_at", sa.DateTime(timezone=True)))


class OldGoal(NamedTuple):
    """A row of a service's old goal table."""

    name: str
    version: str
    goal_json: str
    applied_at: datetime


def copy_goals(connection: sa.Connection, rows: Iterable[OldGoal]) -> None:
    """Keep each version (first applied) and, per name, the last applied as the one in force."""
    first: dict[str, OldGoal] = {}
    last: dict[str, OldGoal] = {}
    for row in sorted(rows, key=lambda r: r.applied_at):
        first.setdefault(row.version, row)
        last[row.name] = row
    if first:
        connection.execute(_versions.insert(), [r._asdict() for r in first.values()])
    if last:
        connection.execute(_in_force.insert(), [{"name": r.name, "version": r.version, "applied_at": r.applied_at}
                                                for r in last.values()])
