"""The ingest store: goals by dataset name, and registered dataset versions."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kernel.store import Migration


class Base(DeclarativeBase):
    pass


class GoalRow(Base):
    """The latest goal applied for a dataset (its data.* fields decide the split and PII policy)."""

    __tablename__ = "ingest_goals"
    dataset_name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100))
    goal_version: Mapped[str] = mapped_column(sa.String(80))
    goal_json: Mapped[str] = mapped_column(sa.Text)
    applied_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class RegistrationRow(Base):
    """A registered dataset version; one per (name, version), so the same bytes register once."""

    __tablename__ = "ingest_registrations"
    dataset_name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    dataset_version: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    published_event_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    registered: Mapped[bytes] = mapped_column(sa.LargeBinary)  # the DatasetRegistered protobuf
    labels_json: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


MIGRATIONS = [Migration("ingest-0001-goals-registrations", lambda conn: Base.metadata.create_all(conn))]
