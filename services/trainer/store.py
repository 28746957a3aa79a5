"""The trainer's tables: datasets it has seen, and its runs (goals: services.kernel.goals)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The trainer's own metadata."""


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


# The alembic revisions of these tables (docs/migrations.md).
MIGRATIONS = Path(__file__).with_name("migrations")


# ---------------------------------------------------------------- queries the handlers and the CLI share

def remember_dataset(session: sa.orm.Session, name: str, version: str, dataset_json: str, when: datetime) -> None:
    """Record a registered dataset version (once)."""
    if session.get(DatasetRow, (name, version)) is None:
        session.add(DatasetRow(name=name, version=version, dataset_json=dataset_json, registered_at=when))


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
