"""Fixtures for every tier. Integration tests share one real broker (started by `.ci/run` with
`tuneline kafka start`, or here if none answers) and get a fresh namespace each, so topics and
consumer groups never collide and no teardown is needed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.kernel import broker
from services.kernel.bus.topics import broker_reachable, ensure_topics
from services.kernel.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # noqa: TID251 -- the test process and its children load models offline


@pytest.fixture(scope="session")
def kafka_ready() -> str:
    """The bootstrap of a broker that answers; starts the embedded one when none does."""
    base = Settings()
    if not broker_reachable(base, 3.0):
        if not base.embedded_kafka:
            pytest.fail(f"Kafka at {base.bootstrap} does not answer")
        broker.start(base)
    return base.bootstrap


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
