"""The deployer's tables: each goal's rollout state, and the current step's progress (goals: services.kernel.goals)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.deployer.domain.rollout import Rollout, StepStats

SERVICE = "deployer"


class Base(DeclarativeBase):
    pass


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


# The alembic revisions of these tables (docs/migrations.md).
MIGRATIONS = Path(__file__).with_name("migrations")


def _now() -> datetime:
    return datetime.now(UTC)


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
