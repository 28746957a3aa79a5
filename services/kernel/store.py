"""Each service's store: SQLAlchemy over SQLite (WAL) by default, PostgreSQL by URL.

The same code runs on both (tests/integration/kernel/test_store_contract.py runs one contract over
each): the outbox keeps commit order on PostgreSQL (services.kernel.outbox), jobs are leased
(services.kernel.jobs).

The kernel's own tables (inbox, outbox, jobs here; goals in services.kernel.goals) and each
service's are made by alembic revisions, which `Store.open` runs (services.kernel.migrations).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from services.kernel.migrations import upgrade
from services.kernel.retry import RetriesExhausted, RetryPolicy
from services.kernel.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
# A locked SQLite file or a PostgreSQL serialization race clears in milliseconds; 8 attempts from
# 50 ms, capped at 2 s, wait about 5 s in all before the caller sees the error.
STORE_RETRY = RetryPolicy(attempts=8, base_s=0.05, cap_s=2.0)

metadata = sa.MetaData()

inbox = sa.Table(
    "tuneline_inbox",
    metadata,
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("topic", sa.String(300), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)

outbox = sa.Table(
    "tuneline_outbox",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("topic", sa.String(300), nullable=False),
    sa.Column("key", sa.LargeBinary, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True, index=True),
)

jobs = sa.Table(
    "tuneline_jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(100), nullable=False, index=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("traceparent", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The runner that claimed it and until when the claim holds (services.kernel.jobs).
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("kind", "key", name="uq_tuneline_jobs_kind_key"),
)

def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _sqlite_engine(url: str, pool_size: int, pool_timeout_s: float, synchronous: str) -> sa.Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=pool_size,
                              pool_timeout=pool_timeout_s)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Autocommit at the driver level so that SQLAlchemy's BEGIN below is the only transaction:
        # BEGIN IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading a
        # read lock; WAL lets readers go on meanwhile.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # Deleted or overwritten content is zeroed, not left in free pages: text that retention removes
        # is gone from the file, not just from the tables.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


_SYNCHRONOUS = ("FULL", "NORMAL")  # the values the PRAGMA may be given (never a caller's text)


def make_engine(url: str, pool_size: int = 8, pool_timeout_s: float = 30.0, sqlite_synchronous: str = "FULL") -> sa.Engine:
    """An engine for a store URL: SQLite tuned for concurrent writers (durable commits unless
    `sqlite_synchronous` is NORMAL), anything else as given.

    At most `pool_size` connections (and as many again in overflow); a caller that waits longer than
    `pool_timeout_s` for one gets sqlalchemy's TimeoutError, which the store's retry policy retries.
    """
    if url.startswith("sqlite"):
        if sqlite_synchronous not in _SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {_SYNCHRONOUS}, not {sqlite_synchronous!r}")
        return _sqlite_engine(url, pool_size, pool_timeout_s, sqlite_synchronous)
    return sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, pool_timeout=pool_timeout_s)


class Store:
    """A service's database: migrations, and sessions that are one transaction each."""

    def __init__(self, url: str, service: str, pool_size: int = 8, pool_timeout_s: float = 30.0,
                 sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.service = service
        self.engine = make_engine(url, pool_size, pool_timeout_s, sqlite_synchronous)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings, service: str, migrations: Path | None = None) -> Store:
        """Open a service's store and bring its schema up to date (`migrations`: its revisions' folder)."""
        store = cls(settings.store_url_for(service), service, settings.store_pool_size, settings.store_pool_timeout_s,
                    settings.store_sqlite_synchronous)
        store.migrate(migrations)
        return store

    def migrate(self, migrations: Path | None = None) -> list[str]:
        """Run the kernel's alembic revisions and those in `migrations`, in one transaction; returns those applied now."""
        with self.engine.begin() as conn:
            applied = upgrade(conn, migrations)
        if applied:
            log.info("store %s: applied migrations %s", self.service, ", ".join(applied))
        return applied

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a transaction, retrying transient database errors (STORE_RETRY)."""

        def once() -> T:
            with self.session() as session:
                return work(session)

        try:
            return STORE_RETRY.call(once, what=f"store {self.service}")
        except RetriesExhausted as gave_up:
            raise gave_up.error from None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
