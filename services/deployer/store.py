"""The deployer's tables: goals in force, each goal's rollout state, and the current step's progress."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.deployer.domain.rollout import Rollout, StepStats
from services.kernel.goal import Goal, goal_from_json
from services.kernel.store import Migration

SERVICE = "deployer"


class Base(DeclarativeBase):
    pass


class GoalRow(Base):
    """The latest applied version of each goal."""

    __tablename__ = "deployer_goals"
    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(80))
    goal_json: Mapped[str] = mapped_column(sa.Text)
    applied_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class RolloutRow(Base):
    """A goal's rollout state machine, as JSON (domain.rollout.Rollout)."""

    __tablename__ = "deployer_rollouts"
    goal: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(20))
    rollout_json: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class ProgressRow(Base):
    """The candidate's numbers in the current step, saved periodically so a restart keeps them."""

    __tablename__ = "deployer_progress"
    goal: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(sa.String(64))
    step_index: Mapped[int] = mapped_column(sa.Integer)
    stats_json: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


MIGRATIONS = [Migration("deployer-0001-goals-rollouts-progress", lambda conn: Base.metadata.create_all(conn))]


def _now() -> datetime:
    return datetime.now(UTC)


def save_goal(session: Session, goal: Goal) -> None:
    """Keep the goal as the one in force for its name."""
    session.merge(GoalRow(name=goal.name, version=goal.version, goal_json=goal.canonical_json(), applied_at=_now()))


def goal_in_force(session: Session, name: str) -> Goal | None:
    """The latest applied goal of that name, or None."""
    row = session.get(GoalRow, name)
    return goal_from_json(row.goal_json) if row else None


def save_rollout(session: Session, rollout: Rollout) -> None:
    """Persist a goal's rollout state (insert or replace)."""
    session.merge(RolloutRow(goal=rollout.goal, state=rollout.state, rollout_json=rollout.model_dump_json(),
                             updated_at=_now()))


def load_rollouts(session: Session) -> list[Rollout]:
    """Every goal's rollout state."""
    rows = session.scalars(sa.select(RolloutRow).order_by(RolloutRow.goal))
    return [Rollout.model_validate_json(r.rollout_json) for r in rows]


def save_progress(session: Session, goal: str, deployment_id: str, step_index: int, stats: StepStats) -> None:
    """Persist the current step's numbers."""
    session.merge(ProgressRow(goal=goal, deployment_id=deployment_id, step_index=step_index,
                              stats_json=stats.model_dump_json(), updated_at=_now()))


def load_progress(session: Session, goal: str, deployment_id: str, step_index: int) -> StepStats | None:
    """The saved numbers of that deployment's step, if any."""
    row = session.get(ProgressRow, goal)
    if row is None or row.deployment_id != deployment_id or row.step_index != step_index:
        return None
    return StepStats.model_validate_json(row.stats_json)
