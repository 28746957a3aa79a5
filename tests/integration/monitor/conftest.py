"""Monitor integration helpers: real prediction features, a store, blobs, and a kernel-like driver."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import numpy as np
import pandas as pd
import pytest
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from benchmarks.monitor import build_traffic, mixed_window
from services.kernel.blobs import BlobStore
from services.kernel.bus.consumer import Handler
from services.kernel.events import Incoming, Outgoing, event_name_of
from services.kernel.goal import load_goal
from services.kernel.ids import uuid7
from services.kernel.jobs import Job, JobContext, JobRunner
from services.kernel.outbox import emit
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import Store
from services.monitor import handlers
from services.monitor.adapters.evidently_report import render_drift_html
from services.monitor.domain.alerts import Alert
from services.monitor.reports import execute_incident
from services.monitor.store import MIGRATIONS
from services.monitor.windows import INCIDENT_JOB, WindowDeps

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ADAPTER = "sha256:" + "a" * 64
M = TypeVar("M", bound=Message)


def incoming(message: M, at_s: float, subject: str = "banking77") -> Incoming[M]:
    name = event_name_of(message)
    return Incoming(id=uuid7(), type=name, source="test/1", time=T0 + timedelta(seconds=at_s), subject=subject,
                    message=message, topic=f"tuneline.{name}", partition=0, offset=0)


@pytest.fixture(scope="session")
def traffic(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Features of real predictions (bundled MiniLM + a logistic head, one torch thread), cached between runs."""
    return build_traffic()


class Driver:
    """Runs handlers like the kernel does (one transaction per batch), then the incident report jobs they
    queued (as the monitor's runner does, with the real Evidently renderer), and collects what both emit."""

    def __init__(self, store: Store, deps: WindowDeps) -> None:
        self.store, self.deps, self.clock = store, deps, 0.0
        self.emitted: list[Outgoing] = []
        self.incidents = JobRunner(store, INCIDENT_JOB, self._incident)
        self.render: Callable[[pd.DataFrame, pd.DataFrame], bytes] = render_drift_html
        self._from_jobs: list[Outgoing] = []
        self.routes: dict[str, Handler] = {"goal.applied": handlers.on_goal_applied, "eval.passed": handlers.on_eval_passed,
                                           "deployment.started": handlers.on_deployment_started,
                                           "deployment.promoted": handlers.on_deployment_promoted,
                                           "inference.logged": functools.partial(handlers.on_inference_logged, deps=deps)}

    def send(self, messages: Sequence[Message]) -> list[Outgoing]:
        out: list[Outgoing] = []
        with self.store.session() as s:
            for m in messages:
                self.clock += 0.01
                for o in self.routes[event_name_of(m)](incoming(m, self.clock), s) or []:
                    emit(s, o)
                    out.append(o)
        while self.incidents.run_once():
            out += self._from_jobs
            self._from_jobs = []
        self.emitted += out
        return out

    def _incident(self, job: Job, ctx: JobContext) -> list[Outgoing]:
        self._from_jobs = execute_incident(job, ctx, store=self.store, blobs=self.deps.blobs, render=self.render)
        return self._from_jobs

    def events(self, name: str) -> list[Outgoing]:
        return [o for o in self.emitted if o.event == name]

    def window(self, frame: pd.DataFrame, variant: str = "canary") -> list[Outgoing]:
        msgs = [ev.InferenceLogged(request_id=uuid7(), goal_name="banking77", adapter_digest=ADAPTER, variant=variant,
                                   deployment_id="dep-1", label=str(r.label), confidence=r.confidence, margin=r.margin,
                                   latency_ms=5.0, text_length=int(r.text_length), token_count=int(r.token_count),
                                   embedding_projection=[getattr(r, f"emb_{i}") for i in range(8)],
                                   served_at_unix_ms=int((T0.timestamp() + self.clock + k * 0.01) * 1000))
                for k, r in enumerate(frame.itertuples(index=False))]
        return self.send(msgs)


@pytest.fixture
def driver(tmp_path, traffic) -> Iterator[Driver]:
    settings = Settings(state_dir=tmp_path, namespace="it.")
    store = Store.open(settings, "monitor", MIGRATIONS)
    blobs = BlobStore(str(tmp_path / "artifacts"))
    d = Driver(store, WindowDeps(blobs=blobs, report_every=1000))
    goal = load_goal(REPO_ROOT / "goals" / "banking77.yaml")
    buf = io.BytesIO()
    traffic["reference"].to_parquet(buf, index=False)
    table = blobs.put_bytes(buf.getvalue(), "application/vnd.apache.parquet")
    outcome = ev.EvalOutcome(eval_id="eval-1", run_id="run-1", goal_name="banking77", passed=True,
                             adapter=ev.ArtifactRef(digest=ADAPTER), reference=ev.ReferenceProfile(table=table, rows=1000))
    d.send([ev.GoalApplied(goal_name="banking77", goal_version=goal.version, goal_json=goal.canonical_json()),
            ev.EvalPassed(outcome=outcome),
            ev.DeploymentStarted(deployment_id="dep-1", goal_name="banking77", adapter=ev.ArtifactRef(digest=ADAPTER))])
    yield d
    store.dispose()


@pytest.fixture
def windows(traffic):
    """A window factory: window_size rows of banking77 test traffic with a share from another dataset."""
    rng = np.random.default_rng(2026)
    return lambda shift, share, size=500: mixed_window(traffic, shift, share, size, rng)


@pytest.fixture
def alert_type():
    return Alert


@pytest.fixture
def make_incoming():
    """A factory of decoded events with fresh ids."""
    return lambda message: incoming(message, 0.0)
