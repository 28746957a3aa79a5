"""Fixtures for every tier. Integration tests share one real broker (started by `.ci/run` with
`tuneline kafka start`, or here if none answers) and get a fresh namespace each, so topics and
consumer groups never collide and no teardown is needed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import fsspec
import pytest

from services.kernel import broker, postgres
from services.kernel.bus.topics import broker_reachable, ensure_topics
from services.kernel.settings import Settings

if TYPE_CHECKING:
    from tests.support import S3Server

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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 API server on loopback (moto's server mode, a separate process) for the whole session, its bucket
    made, stopped at the end. This process and the services it starts reach it as a user's would: through the
    standard AWS_* variables (`S3Server.env`), set for the session."""
    from tests.support import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log")
    s3 = fsspec.get_filesystem_class("s3")
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
                mp.delenv(name, raising=False)  # would take precedence over the server's endpoint and keys
            for name, value in server.env.items():
                mp.setenv(name, value)
            s3.clear_instance_cache()  # s3fs caches clients by their arguments, not by the environment
            fsspec.filesystem("s3").mkdir(server.BUCKET)
            yield server
            s3.clear_instance_cache()
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def artifact_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty artifact root on each backend: a local folder, or a new prefix in the S3 server's bucket."""
    if request.param == "local":
        return str(tmp_path / "artifacts")
    server: S3Server = request.getfixturevalue("s3_server")
    return server.root(uuid.uuid4().hex)


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
