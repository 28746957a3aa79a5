"""Fixtures for every tier. Integration tests share one real broker (started by `.ci/run` with
`tuneline kafka start`, or here if none answers) and get a fresh namespace each, so topics and
consumer groups never collide and no teardown is needed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.kernel import broker, postgres
from services.kernel.bus.topics import broker_reachable, ensure_topics
from services.kernel.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # noqa: TID251 -- the test process and its children load models offline


@pytest.fixture(scope="session")
def kafka_ready() -> Iterator[str]:
    """The bootstrap of a broker that answers; starts the embedded one when none does, and stops it at the end."""
    base = Settings()
    started = False
    if not broker_reachable(base, 3.0):
        if not base.embedded_kafka:
            pytest.fail(f"Kafka at {base.bootstrap} does not answer")
        broker.start(base)
        started = True
    yield base.bootstrap
    if started:
        broker.stop(base)


@pytest.fixture(scope="session")
def postgres_ready() -> Iterator[Settings]:
    """Settings of an embedded PostgreSQL server that answers (`tuneline postgres start` in CI, or started here
    and stopped at the end)."""
    base = Settings()
    started = False
    if not postgres.answering(base):
        postgres.start(base)
        started = True
    yield base
    if started:
        postgres.stop(base)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store on each backend: a SQLite file, or a new database on the embedded PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base: Settings = request.getfixturevalue("postgres_ready")
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.create_database(base, name)
    yield postgres.url(base, name)
    postgres.drop_database(base, name)


@pytest.fixture
def settings(tmp_path: Path, kafka_ready: str) -> Iterator[Settings]:
    """Settings with a fresh namespace and state folder, all topics created."""
    s = Settings(state_dir=tmp_path / "state", namespace=f"t{uuid.uuid4().hex[:10]}.", kafka_bootstrap=kafka_ready,
                 artifact_root=str(tmp_path / "state" / "artifacts"), consumer_backoff_s=0.05, consumer_max_attempts=3)
    ensure_topics(s)
    yield s


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    """Settings for unit tests: a fresh state folder, no broker."""
    return Settings(state_dir=tmp_path / "state", namespace=f"u{uuid.uuid4().hex[:10]}.", kafka_bootstrap="127.0.0.1:1")
