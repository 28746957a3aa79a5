"""Ingest integration helpers: run `tuneline ingest run` as a subprocess, publish, read verdicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import types
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition

from services.ingest.settings import IngestSettings
from services.kernel.events import Incoming, Outgoing, decode
from services.kernel.outbox import publish_now
from services.kernel.store import jobs, outbox

REPO = Path(__file__).resolve().parents[3]


class IngestProcess:
    """One `tuneline ingest run` process with the test's settings."""

    def __init__(self, settings: IngestSettings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        # The child process inherits this process's environment plus the test's settings.
        return {**os.environ, "TUNELINE_NAMESPACE": s.namespace, "TUNELINE_STATE_DIR": str(s.state_dir),  # noqa: TID251 -- child env
                "TUNELINE_KAFKA_BOOTSTRAP": s.bootstrap, "TUNELINE_ARTIFACT_ROOT": s.artifacts,
                "TUNELINE_ALLOWED_DATA_ROOTS": json.dumps([str(r) for r in s.allowed_data_roots]),
                "TUNELINE_CHUNK_ROWS": str(s.chunk_rows), "TUNELINE_CONSUMER_SESSION_TIMEOUT_S": "6"}

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([str(REPO / ".venv/bin/tuneline"), "ingest", "run"], cwd=REPO, env=self.env(), stdout=out, stderr=out)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)


def read_events(settings: IngestSettings, event: str) -> list[Incoming[Any]]:
    """Every event on a topic, from the start to the current end (tests read the named event's fields by name)."""
    c = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"reader-{uuid.uuid4().hex}", "enable.auto.commit": False})
    topic = settings.topic(event)
    meta = c.list_topics(topic, timeout=10).topics[topic]
    found: list[Incoming[Any]] = []
    for p in meta.partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi <= lo:
            continue
        c.assign([TopicPartition(topic, p, lo)])
        while True:
            m = c.poll(5)
            if m is None or m.error():
                break
            # A consumed record's headers are (key, bytes) pairs and it has an offset (confluent_kafka types them loosely).
            found.append(decode(m.value(), cast("list[tuple[str, bytes]] | None", m.headers()), topic=topic))
            if cast(int, m.offset()) >= hi - 1:
                break
    c.close()
    return found


def wait_for(predicate, timeout_s: float, what: str):
    """Poll until predicate() is truthy or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def settled(settings: IngestSettings) -> bool:
    """Whether every ingest job finished and every outbox row was sent."""
    db = settings.state_dir / "stores" / "ingest.db"
    if not db.exists():
        return False
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        conn = engine.connect()
    except sa.exc.OperationalError:
        return False
    with conn:
        if not sa.inspect(conn).has_table("tuneline_jobs"):
            return False
        pending = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status.in_(["queued", "running"]))).scalar()
        unsent = conn.execute(sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))).scalar()
        total = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar()
    engine.dispose()
    return bool(total) and pending == 0 and unsent == 0


def job_progress(settings: IngestSettings) -> float:
    """The progress of the running ingest job (0 when none)."""
    db = settings.state_dir / "stores" / "ingest.db"
    if not db.exists():
        return 0.0
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            p = conn.execute(sa.select(sa.func.max(jobs.c.progress)).where(jobs.c.status == "running")).scalar()
    except sa.exc.OperationalError:
        return 0.0  # the service is still creating its tables
    finally:
        engine.dispose()
    return float(p or 0.0)


@pytest.fixture
def ingest_env(settings, tmp_path):
    """Ingest settings in the test's namespace, a data folder inside the allowed roots, and the process."""
    data = tmp_path / "data"
    data.mkdir()
    s = IngestSettings(**{**settings.model_dump(), "allowed_data_roots": [REPO / "datasets", data], "chunk_rows": 4096})
    proc = IngestProcess(s, tmp_path / "ingest.log")
    proc.start()
    publish = lambda msg: publish_now(s, [Outgoing(msg, msg.dataset_name)], source="test")[0]  # noqa: E731
    yield types.SimpleNamespace(settings=s, data=data, proc=proc, publish=publish, read=lambda e: read_events(s, e),
                                wait_for=wait_for, settled=lambda: settled(s), progress=lambda: job_progress(s))
    proc.kill(signal.SIGTERM)
