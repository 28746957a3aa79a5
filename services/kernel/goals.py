"""Applied goals, one contract for every service: the tables, the goal.applied core, the lookups.

Every service keeps the goals it has been told about in its own store, in the kernel's tables:
`tuneline_goal_versions` holds each version once (looked up by `run.goal_version`, say) and
`tuneline_goals` the version in force for each name. A goal.applied is refused with `InvalidInput`
(a consumer dead-letters it, and nothing is stored) unless it carries a valid goal whose name and
version are the ones the event declares.
"""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import ConfigError, InvalidInput
from services.kernel.events import Incoming
from services.kernel.goal import Goal, goal_from_json
from services.kernel.store import metadata, utcnow

goal_versions = sa.Table(
    "tuneline_goal_versions",
    metadata,
    sa.Column("version", sa.String(80), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, index=True),
    sa.Column("goal_json", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),   # first applied
)

goals = sa.Table(
    "tuneline_goals",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("version", sa.String(80), sa.ForeignKey("tuneline_goal_versions.version"), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),   # last applied
)

_IN_FORCE = sa.select(goal_versions.c.goal_json).join(goals, goals.c.version == goal_versions.c.version)


def apply_goal(incoming: Incoming[ev.GoalApplied], session: Session) -> Goal:
    """The goal.applied core: check the goal against what the event declares, store it, return it."""
    goal = _checked(incoming.message)
    _store(session, goal)
    return goal


def _checked(msg: ev.GoalApplied) -> Goal:
    """The goal a goal.applied carries; InvalidInput unless it parses and has the declared name and version."""
    try:
        goal = goal_from_json(msg.goal_json)
    except (ConfigError, ValueError) as err:
        raise InvalidInput(f"goal.applied for {msg.goal_name!r} carries no valid goal: {err}",
                           hint="apply the goal file again with `tuneline goal apply`") from None
    if msg.goal_version != goal.version or msg.goal_name != goal.name:
        raise InvalidInput(
            f"goal.applied declares goal {msg.goal_name!r} version {msg.goal_version or '(none)'} but carries "
            f"goal {goal.name!r} version {goal.version}",
            hint="goal_version must be the sha256 of goal_json; publish with `tuneline goal apply`")
    return goal


def _store(session: Session, goal: Goal) -> None:
    now = utcnow()
    known = session.execute(sa.select(goal_versions.c.version).where(goal_versions.c.version == goal.version))
    if known.first() is None:
        session.execute(goal_versions.insert().values(version=goal.version, name=goal.name,
                                                      goal_json=goal.canonical_json(), applied_at=now))
    in_force = {"name": goal.name, "version": goal.version, "applied_at": now}
    if session.execute(sa.select(goals.c.name).where(goals.c.name == goal.name)).first() is None:
        session.execute(goals.insert().values(**in_force))
    else:
        session.execute(goals.update().where(goals.c.name == goal.name).values(**in_force))


def latest_goal(session: Session, name: str) -> Goal | None:
    """The goal in force under that name (the last applied), or None."""
    text = session.execute(_IN_FORCE.where(goals.c.name == name)).scalar()
    return _parsed(text) if text is not None else None


def goal_by_version(session: Session, version: str) -> Goal | None:
    """Any goal version ever applied, or None."""
    text = session.execute(sa.select(goal_versions.c.goal_json).where(goal_versions.c.version == version)).scalar()
    return _parsed(text) if text is not None else None


def all_goals(session: Session) -> list[Goal]:
    """Every goal in force, by name."""
    return [_parsed(text) for text in session.execute(_IN_FORCE.order_by(goals.c.name)).scalars()]


def goal_for_dataset(session: Session, dataset: str) -> Goal | None:
    """The most recently applied goal in force that trains on `dataset`, or None."""
    texts = session.execute(_IN_FORCE.order_by(goals.c.applied_at.desc(), goals.c.name)).scalars()
    return next((g for g in map(_parsed, texts) if g.data.dataset == dataset), None)


@lru_cache(maxsize=256)
def _parsed(text: str) -> Goal:
    # Stored goals were checked when applied; the monitor reads one per batch of predictions, so
    # parse each canonical JSON once (a Goal is frozen, so sharing it is safe).
    return goal_from_json(text)


class TenantDirectory:
    """The tenant of every goal in force, in memory for the request path (servers check calls against it).

    Loaded from the store at start and told of each goal.applied; a goal it has not heard of has no
    tenant (None), which only a credential of every tenant may act on.
    """

    def __init__(self) -> None:
        self._tenants: dict[str, str] = {}

    def load(self, session: Session) -> TenantDirectory:
        """Learn every goal in force; returns self."""
        for goal in all_goals(session):
            self.note(goal)
        return self

    def note(self, goal: Goal) -> None:
        """Learn (or update) one goal's tenant."""
        self._tenants[goal.name] = goal.tenant

    def tenant_of(self, goal: str) -> str | None:
        """The goal's tenant, or None for a goal not applied (as far as this process knows)."""
        return self._tenants.get(goal)
