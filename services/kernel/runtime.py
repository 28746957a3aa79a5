"""A service process: faust agents for its subscriptions, the outbox relay, job runners, and
background components (a gRPC server), started and stopped together.

`run()` blocks in the faust worker, which handles SIGTERM/SIGINT: agents finish the record in
hand and commit offsets, then job runners, background components and the relay stop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import faust
import mode

from services.kernel.bus.consumer import EventProcessor, RawRecord, Subscription
from services.kernel.bus.producer import EventProducer
from services.kernel.bus.security import faust_credentials
from services.kernel.bus.topics import ensure_topics
from services.kernel.jobs import JobRunner
from services.kernel.metrics import metrics_address, setup_metrics, shutdown_metrics
from services.kernel.outbox import OutboxRelay
from services.kernel.settings import Settings
from services.kernel.store import Store
from services.kernel.telemetry import setup_telemetry, shutdown_telemetry

log = logging.getLogger(__name__)
HEARTBEAT_S = 2.0


class Background(Protocol):
    """A component that runs beside the agents (e.g. a gRPC server)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class ServiceRuntime:
    """Everything one service process runs."""

    name: str
    settings: Settings
    store: Store
    subscriptions: list[Subscription]
    job_runners: list[JobRunner] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.source = f"{self.name}/{self.settings.instance or os.getpid()}"
        self.producer = EventProducer(self.settings)
        self.relay = OutboxRelay(self.store, self.settings, self.source, self.producer)
        self.processors: list[EventProcessor] = []
        self._started = False

    @property
    def ready_file(self) -> Path:
        """The file the process refreshes while it is healthy."""
        return self.settings.path("run", f"{self.name}.ready")

    def _on_commit(self) -> None:
        self.relay.wake.set()
        for runner in self.job_runners:
            runner.wake.set()

    def build_app(self) -> faust.App:
        """The faust app with one agent per subscription."""
        app = faust.App(
            self.settings.group(self.name),
            broker=f"kafka://{self.settings.bootstrap}",
            broker_credentials=faust_credentials(self.settings),
            store="memory://",
            # faust keeps a table folder even for memory stores; the default is the working directory.
            datadir=str(self.settings.path("faust", self.name)),
            web_enabled=False,
            topic_allow_declare=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            broker_commit_every=100,
            broker_commit_interval=0.5,
            producer_acks=-1,
            stream_recovery_delay=0.0,
            broker_session_timeout=self.settings.consumer_session_timeout_s,
            broker_heartbeat_interval=min(3.0, self.settings.consumer_session_timeout_s / 4),
        )
        for sub in self.subscriptions:
            self._add_agent(app, sub)
        runtime = self

        class Lifecycle(mode.Service):
            async def on_start(self) -> None:
                runtime.start_components()

            async def on_stop(self) -> None:
                runtime.stop_components()

        app.service(Lifecycle)

        async def heartbeat() -> None:
            runtime.write_ready()

        app.timer(HEARTBEAT_S)(heartbeat)
        return app

    def _add_agent(self, app: faust.App, sub: Subscription) -> None:
        topic = app.topic(self.settings.topic(sub.event), key_type=bytes, value_type=bytes,
                          key_serializer="raw", value_serializer="raw")
        processor = EventProcessor(sub, self.store, self.settings, self.producer, self.source, self._on_commit)
        self.processors.append(processor)
        # One thread per agent keeps records of a partition in order while faust's loop stays free.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"agent-{sub.consumer}-{sub.event}")

        async def agent(stream: faust.StreamT[Any]) -> None:
            loop = asyncio.get_running_loop()
            if sub.batch_size > 1:
                assert isinstance(stream, faust.Stream), "faust hands agents a Stream (take_events is not on StreamT)"
                async for events in stream.take_events(sub.batch_size, within=sub.batch_within_s):
                    await loop.run_in_executor(pool, processor.process, [_raw(e) for e in events])
            else:
                async for event in stream.events():
                    await loop.run_in_executor(pool, processor.process, [_raw(event)])

        app.agent(topic, name=f"{sub.consumer}.{sub.event}")(agent)

    def start_components(self) -> None:
        """Start the relay, job runners and background components (idempotent)."""
        if self._started:
            return
        self._started = True
        self.relay.start()
        for runner in self.job_runners:
            runner.start()
        for component in self.background:
            component.start()
        self.write_ready()
        log.info("%s ready (subscriptions: %s)", self.name, ", ".join(s.event for s in self.subscriptions) or "none")

    def stop_components(self) -> None:
        """Stop in reverse order: serving first, then jobs, then the relay flushes."""
        if not self._started:
            return
        self._started = False
        self.ready_file.unlink(missing_ok=True)
        for component in reversed(self.background):
            component.stop()
        for runner in self.job_runners:
            runner.stop()
        self.relay.stop()
        self.producer.close()
        shutdown_telemetry()
        shutdown_metrics()

    def write_ready(self) -> None:
        """Refresh the ready file with a heartbeat time and the pid."""
        self.ready_file.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), "service": self.name,
                                               "metrics": metrics_address()}))

    def run(self) -> None:
        """Block in the faust worker until SIGTERM/SIGINT."""
        setup_telemetry(self.name, self.settings)
        setup_metrics(self.name, self.settings)
        ensure_topics(self.settings)
        app = self.build_app()
        if not self.subscriptions:
            # faust needs at least one agent to join a group; a service without consumers just serves.
            self.start_components()
        worker = faust.Worker(app, loglevel=self.settings.log_level.lower(), quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()


def _raw(event: faust.types.EventT[bytes]) -> RawRecord:
    msg = event.message
    headers = event.headers
    items: list[tuple[str, bytes]] = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    key = event.key if isinstance(event.key, bytes) else None
    value = event.value if isinstance(event.value, bytes) else None
    return RawRecord(msg.topic, msg.partition, msg.offset, key, value, items)


def is_ready(settings: Settings, service: str, max_age_s: float = 4 * HEARTBEAT_S) -> bool:
    """Whether a service's ready file exists and was refreshed recently."""
    path = settings.state_dir / "run" / f"{service}.ready"
    try:
        return time.time() - float(json.loads(path.read_text())["at"]) < max_age_s
    except (OSError, ValueError, KeyError):
        return False


def metrics_endpoint(settings: Settings, service: str) -> str:
    """Where a running service serves /metrics (HOST:PORT from its ready file), or "" when unknown or off."""
    try:
        return str(json.loads((settings.state_dir / "run" / f"{service}.ready").read_text()).get("metrics", ""))
    except (OSError, ValueError, AttributeError):
        return ""
