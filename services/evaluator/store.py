"""The evaluator's tables: runs waiting for evaluation, champions, and decisions (goals: services.kernel.goals)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RequestRow(Base):
    """A successful run.finished to evaluate; `status` is waiting_goal until its goal is known."""

    __tablename__ = "evaluator_requests"
    run_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    eval_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100))
    goal_version: Mapped[str] = mapped_column(sa.String(80), index=True)
    run_finished: Mapped[bytes] = mapped_column(sa.LargeBinary)   # the protobuf, as received
    traceparent: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class AdapterRow(Base):
    """Where each adapter seen in events lives, so a champion named only by digest can be fetched."""

    __tablename__ = "evaluator_adapters"
    digest: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    uri: Mapped[str] = mapped_column(sa.Text)
    media_type: Mapped[str] = mapped_column(sa.String(100), default="")
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ChampionRow(Base):
    """The adapter serving a goal, learned from deployment.promoted / deployment.rolled_back."""

    __tablename__ = "evaluator_champions"
    goal_name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(80))          # empty: nothing serving
    event_time: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(sa.String(64))


class EvalRow(Base):
    """One gate decision and where its reports are."""

    __tablename__ = "evaluator_evals"
    eval_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100), index=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(80))
    passed: Mapped[bool] = mapped_column(sa.Boolean)
    summary: Mapped[str] = mapped_column(sa.Text)
    outcome: Mapped[bytes] = mapped_column(sa.LargeBinary)       # the EvalOutcome protobuf
    report_json_uri: Mapped[str] = mapped_column(sa.Text, default="")
    report_html_uri: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


# The alembic revisions of these tables (docs/migrations.md).
MIGRATIONS = Path(__file__).with_name("migrations")
