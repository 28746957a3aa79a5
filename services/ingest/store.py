"""The ingest store: registered dataset versions (goals: services.kernel.goals)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RegistrationRow(Base):
    """A registered dataset version; one per (name, version), so the same bytes register once."""

    __tablename__ = "ingest_registrations"
    dataset_name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    dataset_version: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    published_event_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    registered: Mapped[bytes] = mapped_column(sa.LargeBinary)  # the DatasetRegistered protobuf
    labels_json: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


# The alembic revisions of these tables (docs/migrations.md).
MIGRATIONS = Path(__file__).with_name("migrations")
