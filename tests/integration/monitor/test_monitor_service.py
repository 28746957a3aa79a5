"""The monitor as a process on the real broker: drift -> one rollback request, even across a SIGKILL
right after the decision; every event in the ledger; dead letters alerted; the ledger verifies."""

from __future__ import annotations

import io
import signal
import sqlite3
from contextlib import closing
from typing import cast

import grpc
import numpy as np
import pytest
from confluent_kafka import Producer
from tuneline.events.v1 import events_pb2 as ev
from tuneline.monitor.v1 import query_pb2 as q
from tuneline.monitor.v1 import query_pb2_grpc as q_grpc

from benchmarks.monitor import mixed_window
from services.kernel.blobs import BlobStore
from services.kernel.events import Outgoing
from services.kernel.goal import load_goal, parse_goal
from services.kernel.ids import uuid7
from services.kernel.outbox import publish_now
from services.kernel.settings import REPO_ROOT
from tests.support import EventLog, free_ports, publish_signed, python, start_process, stop_process, wait_for

pytestmark = pytest.mark.integration
ADAPTER = "sha256:" + "c" * 64
WINDOW = 200
RUN_MONITOR = "import sys; sys.argv = ['tuneline', 'monitor', 'run']; from services.cli import main; main()"



def _predictions(frame, start_ms: int) -> list[Outgoing]:
    return [Outgoing(ev.InferenceLogged(
        request_id=uuid7(), goal_name="banking77", adapter_digest=ADAPTER, variant="canary", deployment_id="dep-9",
        label=str(r.label), confidence=r.confidence, margin=r.margin, latency_ms=4.0, text_length=int(r.text_length),
        token_count=int(r.token_count), embedding_projection=[getattr(r, f"emb_{i}") for i in range(8)],
        served_at_unix_ms=start_ms + k * 10), "banking77") for k, r in enumerate(frame.itertuples(index=False))]


def _setup_events(settings, traffic) -> list[Outgoing]:
    data = load_goal(REPO_ROOT / "goals" / "banking77.yaml").model_dump(mode="json")
    data["rollback"]["window_size"] = WINDOW
    goal = parse_goal(data)
    buf = io.BytesIO()
    traffic["reference"].to_parquet(buf, index=False)
    table = BlobStore.from_settings(settings).put_bytes(buf.getvalue(), "application/vnd.apache.parquet")
    outcome = ev.EvalOutcome(eval_id="eval-9", run_id="run-9", goal_name="banking77", passed=True,
                             adapter=ev.ArtifactRef(digest=ADAPTER), reference=ev.ReferenceProfile(table=table))
    return [Outgoing(ev.GoalApplied(goal_name="banking77", goal_version=goal.version, goal_json=goal.canonical_json()), "banking77"),
            Outgoing(ev.EvalPassed(outcome=outcome), "banking77"),
            Outgoing(ev.DeploymentStarted(deployment_id="dep-9", goal_name="banking77", adapter=ev.ArtifactRef(digest=ADAPTER)),
                     "banking77")]


def _has_reference(settings) -> bool:
    db = settings.state_dir / "stores" / "monitor.db"
    if not db.exists():
        return False
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        try:
            count: int = con.execute("select count(*) from monitor_references").fetchone()[0]
            return count > 0
        except sqlite3.OperationalError:  # the tables are not created yet
            return False


def _query(settings, method: str, request):
    with grpc.insecure_channel(settings.monitor_address) as ch:
        return getattr(q_grpc.QueryStub(ch), method)(request, metadata=(("authorization", "Bearer tuneline-dev-token"),), timeout=60)


def test_drift_rolls_back_once_across_a_sigkill_and_the_ledger_holds_everything(settings, traffic, tmp_path):
    settings = settings.replace(monitor_address=f"127.0.0.1:{free_ports()[0]}")
    start = lambda: start_process(python("-c", RUN_MONITOR), settings, tmp_path / "monitor.log")  # noqa: E731
    rng = np.random.default_rng(5)
    sent = publish_signed(settings, _setup_events(settings, traffic))
    monitor = start()
    rollbacks, alerts = EventLog(settings, "rollback.requested"), EventLog(settings, "alert.raised")
    try:
        # As in a real rollout, the approval is known before predictions of the adapter arrive (the
        # monitor also holds early windows until it is: see windows.HOLD_WINDOWS).
        wait_for(lambda: _has_reference(settings), 120, "the monitor stored the adapter's reference profile")
        windows = [mixed_window(traffic, None, 0.0, WINDOW, rng) for _ in range(2)]
        windows += [mixed_window(traffic, "clinc150", 1.0, WINDOW, rng) for _ in range(3)]
        for i, w in enumerate(windows):
            sent += publish_now(settings, _predictions(w, 1_000_000 * (i + 1)), "test")
        first = rollbacks.wait(1, timeout_s=240)
        monitor.send_signal(signal.SIGKILL)  # right after the decision reached Kafka
        monitor.wait(30)
        monitor = start()
        more = [mixed_window(traffic, "clinc150", 1.0, WINDOW, rng) for _ in range(2)]
        for i, w in enumerate(more):
            sent += publish_now(settings, _predictions(w, 9_000_000 * (i + 1)), "test")
        # Poison: not a CloudEvent. Both monitor consumers of goal.applied dead-letter it, then alert.
        p = Producer({"bootstrap.servers": settings.bootstrap})
        p.produce(settings.topic("goal.applied"), value=b"\x00garbage", key=b"banking77")
        p.flush(10)
        alerts.wait(1, timeout_s=120, where=lambda a: a.message.kind == "deadletter")
        head = cast(q.LedgerHeadResponse,
                    wait_for(lambda: (h := _query(settings, "LedgerHead", q.LedgerHeadRequest())).sequence >= len(sent) + 3 and h,
                             240, "every event in the ledger"))
        rollbacks.poll(2.0)
        assert len({r.id for r in rollbacks.items}) == 1, "a second rollback request after the restart"
        assert rollbacks.items[0].message.incident_id == first[0].message.incident_id
        verified = _query(settings, "VerifyLedger", q.VerifyLedgerRequest())
        assert verified.ok and verified.records >= head.sequence  # more events (alerts) may land meanwhile
        lineage = _query(settings, "Lineage", q.LineageRequest(id=ADAPTER))
        assert any(s.stage == "evaluation" for s in lineage.steps)
    finally:
        stop_process(monitor)
        rollbacks.close()
        alerts.close()
