"""The trainer's tables: goals and datasets it has seen, and its runs."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kernel.store import Migration


class Base(DeclarativeBase):
    """The trainer's own metadata."""


class GoalRow(Base):
    """The latest applied version of each goal."""

    __tablename__ = "trainer_goals"
    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(80))
    goal_json: Mapped[str] = mapped_column(sa.Text)
    applied_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class DatasetRow(Base):
    """Every registered dataset version (the latest per name is the newest registered_at)."""

    __tablename__ = "trainer_datasets"
    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    dataset_json: Mapped[str] = mapped_column(sa.Text)
    registered_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)


class RunRow(Base):
    """One training run: what it trained on, how it went, what it produced."""

    __tablename__ = "trainer_runs"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100), index=True)
    goal_version: Mapped[str] = mapped_column(sa.String(80))
    dataset_name: Mapped[str] = mapped_column(sa.String(200))
    dataset_version: Mapped[str] = mapped_column(sa.String(80))
    trigger: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    adapter_digest: Mapped[str] = mapped_column(sa.String(80), default="")
    adapter_uri: Mapped[str] = mapped_column(sa.Text, default="")
    envelope_digest: Mapped[str] = mapped_column(sa.String(80), default="")
    envelope_uri: Mapped[str] = mapped_column(sa.Text, default="")
    metrics_json: Mapped[str] = mapped_column(sa.Text, default="{}")
    curve_json: Mapped[str] = mapped_column(sa.Text, default="[]")
    wall_seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


MIGRATIONS = [Migration("trainer-0001-goals-datasets-runs", lambda conn: Base.metadata.create_all(conn))]


# ---------------------------------------------------------------- queries the handlers and the CLI share

def remember_goal(session: sa.orm.Session, name: str, version: str, goal_json: str, when: datetime) -> None:
    """Keep the latest applied version of a goal."""
    row = session.get(GoalRow, name)
    if row is None:
        session.add(GoalRow(name=name, version=version, goal_json=goal_json, applied_at=when))
    else:
        row.version, row.goal_json, row.applied_at = version, goal_json, when


def remember_dataset(session: sa.orm.Session, name: str, version: str, dataset_json: str, when: datetime) -> None:
    """Record a registered dataset version (once)."""
    if session.get(DatasetRow, (name, version)) is None:
        session.add(DatasetRow(name=name, version=version, dataset_json=dataset_json, registered_at=when))


def goal_json(session: sa.orm.Session, name: str) -> str | None:
    """The latest applied goal's JSON, or None."""
    row = session.get(GoalRow, name)
    return row.goal_json if row else None


def goals_for_dataset(session: sa.orm.Session) -> list[str]:
    """Every remembered goal's JSON (few goals: the caller filters by dataset)."""
    return list(session.scalars(sa.select(GoalRow.goal_json).order_by(GoalRow.name)))


def dataset_json(session: sa.orm.Session, name: str, version: str = "") -> str | None:
    """A registered dataset's JSON: that version, or the latest registered."""
    query = sa.select(DatasetRow.dataset_json).where(DatasetRow.name == name)
    if version:
        query = query.where(DatasetRow.version == version)
    return session.scalars(query.order_by(DatasetRow.registered_at.desc()).limit(1)).first()


def run_of_job(session: sa.orm.Session, job_id: str) -> RunRow | None:
    """The run a job executes."""
    return session.scalars(sa.select(RunRow).where(RunRow.job_id == job_id)).first()


def list_runs(session: sa.orm.Session, limit: int = 50) -> list[RunRow]:
    """The newest runs first."""
    return list(session.scalars(sa.select(RunRow).order_by(RunRow.created_at.desc()).limit(limit)))
