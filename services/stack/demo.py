"""`tuneline demo`: the whole loop on real data, narrated, checked stage by stage.

banking77 is published as an upstream team would; ingest registers it, the trainer fine-tunes,
the evaluator gates it and the deployer makes it the goal's first champion; reviewers label what it
answered (ground truth) and the monitor measures its live accuracy. A deliberately weak version
(a partial export) is then published: its candidate must fail the gate. A refreshed good
version goes out as a canary under real test traffic and is promoted. Finally the traffic shifts
to out-of-domain utterances (clinc150): the monitor detects drift and asks for a rollback, and
the deployer restores the previous champion. Exit status 0 only if every stage did what it should.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.broker_security import SecureKafka
from services.kernel.errors import TunelineError
from services.kernel.events import Outgoing
from services.kernel.goal import Goal, load_goal
from services.kernel.ids import short
from services.kernel.outbox import publish_now
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import jobs
from services.kernel.telemetry import continued_span, current_traceparent, trace_id_of
from services.stack import demo_data
from services.stack.loadgen import LoadGenerator, Traffic
from services.stack.watch import Event, EventWatch

TRAIN_TIMEOUT_S = 1800.0
STEP_TIMEOUT_S = 600.0


@dataclass
class Stage:
    """One checked stage of the demo."""

    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class DemoState:
    """What the demo learned along the way, for the summary."""

    stages: list[Stage] = field(default_factory=list)
    trace_id: str = ""
    champion: str = ""
    candidate: str = ""
    accuracy: dict[str, float] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)   # export -> run id
    reports: list[str] = field(default_factory=list)
    request_id: str = ""
    labelled: list[tuple[str, str]] = field(default_factory=list)  # (request id, true label) of answered predictions
    c1_seconds: float = float("nan")
    c2_ratio: float = float("nan")
    rollout: list[str] = field(default_factory=list)
    sent: int = 0        # predictions the demo asked for over gRPC, and how many were answered
    answered: int = 0
    failed: int = 0


class Demo:
    """Drives the loop through events and gRPC only, like any user of the system would."""

    def __init__(self, settings: Settings, goal_file: Path, console: Console) -> None:
        self.settings, self.console = settings, console
        self.goal: Goal = load_goal(goal_file)
        self.state = DemoState()
        self.watch: EventWatch | None = None
        self.data = demo_data.exports(settings.path("inbox", ".keep").parent)

    # ------------------------------------------------------------------ running stages
    def stage(self, name: str, work: Callable[[], str]) -> bool:
        """Run one stage, record whether it did what it should, and narrate it."""
        start = time.monotonic()
        try:
            detail, ok = work(), True
        except (TunelineError, AssertionError) as err:
            detail, ok = str(err), False
        seconds = time.monotonic() - start
        self.state.stages.append(Stage(name, ok, seconds, detail))
        mark = "[green]✔[/]" if ok else "[red]✘[/]"
        self.console.print(f"{mark} [bold]{name}[/] ({seconds:.1f} s) {detail}")
        return ok

    def wait(self, events: tuple[str, ...], where: Callable[[Event], bool], what: str, timeout_s: float = STEP_TIMEOUT_S) -> Event:
        """Wait for an event with a spinner (and the trainer's progress while it trains)."""
        assert self.watch is not None
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[note]}"),
                      TimeElapsedColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(what, total=1.0, note="")
            return self.watch.wait(events, where, timeout_s, on_tick=lambda: self._tick(bar, task))

    def _tick(self, bar: Progress, task: TaskID) -> None:
        fraction, message = self._job_progress()
        bar.update(task, completed=fraction, note=message[:60])

    def _job_progress(self) -> tuple[float, str]:
        for service in ("trainer", "evaluator", "ingest"):
            db = self.settings.state_dir / "stores" / f"{service}.db"
            if not db.exists():
                continue
            engine = sa.create_engine(f"sqlite:///{db}")
            try:
                with engine.connect() as conn:
                    row = conn.execute(sa.select(jobs.c.progress, jobs.c.message).where(jobs.c.status == "running")).first()
            except sa.exc.SQLAlchemyError:
                row = None
            finally:
                engine.dispose()
            if row:
                return float(row.progress), f"{service}: {row.message}"
        return 0.0, ""

    # ------------------------------------------------------------------ the loop, step by step
    def publish_dataset(self, path: Path, export: str) -> str:
        """Publish a dataset version the way an upstream team's pipeline would; returns the ce_id."""
        task = self.goal.task
        msg = ev.DatasetPublished(dataset_name=self.goal.data.dataset, uri=str(path), eval_uri=str(self.data.eval),
                                  format="csv", text_field=task.text_field,
                                  label_field=task.label_field, publisher="upstream-data-team",
                                  lineage={"export": export, "source": "PolyAI BANKING77 (CC BY 4.0)"})
        [event_id] = publish_now(self.settings, [Outgoing(msg, self.goal.data.dataset)], source="demo/upstream")
        return event_id

    def train_and_gate(self, published_id: str, label: str) -> tuple[Event, Event]:
        """Follow one published version through ingest, training and the gate."""
        reg = self.wait(("dataset.registered", "dataset.rejected"),
                        lambda e: e.message.published_event_id == published_id, f"ingest: validating {label}")
        if reg.type == "dataset.rejected":
            raise AssertionError(f"{label} was rejected: {reg.message.summary}")
        version = reg.message.dataset_version
        self.console.print(f"  registered {label} as {short(version)} "
                           f"({reg.message.train_rows} train / {reg.message.eval_rows} eval rows)")
        run = self.wait(("run.finished",), lambda e: e.message.dataset_version == version, f"trainer: fine-tuning on {label}",
                        TRAIN_TIMEOUT_S)
        if run.message.status != "succeeded":
            raise AssertionError(f"training on {label} failed: {run.message.failure_reason}")
        self.console.print(f"  trained {short(run.message.adapter.digest)} in {run.message.wall_seconds:.0f} s")
        self.state.runs[label] = run.message.run_id
        gate = self.wait(("eval.passed", "eval.failed"), lambda e: e.message.outcome.run_id == run.message.run_id,
                         f"evaluator: gating {label}")
        outcome = gate.message.outcome
        self.state.accuracy[label] = outcome.metrics.get("accuracy", float("nan"))
        if outcome.report_html.uri:
            self.state.reports.append(outcome.report_html.uri)
        self.console.print(f"  gate: {'passed' if outcome.passed else 'failed'} — {outcome.summary}")
        return run, gate

    def first_model(self) -> str:
        """The initial export: published, trained, gated, and made the goal's first champion."""
        with continued_span("dataset.publish", **{"tuneline.dataset": self.goal.data.dataset}):
            self.state.trace_id = trace_id_of(current_traceparent())
            published = self.publish_dataset(self.data.initial, "banking77-initial-export")
        run, gate = self.train_and_gate(published, "initial export")
        assert gate.type == "eval.passed", "the first banking77 model must pass its gate"
        digest = run.message.adapter.digest
        self.wait(("deployment.promoted",), lambda e: e.message.adapter.digest == digest, "deployer: rolling out the first model")
        self.state.champion = digest
        self.state.rollout.append(f"{short(digest)} promoted (first model for the goal)")
        return f"champion {short(digest)}, accuracy {self.state.accuracy['initial export']:.3f}"

    def serve_traffic(self) -> str:
        """Real banking77 test utterances through gRPC, answered by the champion."""
        pairs = demo_data.labelled_utterances("banking77", 300)
        gen = LoadGenerator(self.settings, self.goal.name)
        try:
            traffic = gen.send([text for text, _ in pairs])
        finally:
            gen.close()
        self._count(traffic)
        assert traffic.ok == traffic.sent, f"{sum(traffic.failed.values())} failed requests: {dict(traffic.failed)}"
        assert set(traffic.by_adapter) == {self.state.champion}, f"served by {set(map(short, traffic.by_adapter))}"
        self.state.request_id = traffic.first_request_id
        self.state.labelled = [(rid, pairs[position][1]) for position, rid in sorted(traffic.answered.items())]
        return f"{traffic.ok} predictions, all by {short(self.state.champion)}"

    def ground_truth(self) -> str:
        """Reviewers record the true label of each prediction just served (feedback.recorded); the monitor joins
        each to its prediction through the ledger and measures the champion's live accuracy, window by window."""
        from services.kernel.metrics import read_samples, scrape, short_digest
        from services.kernel.runtime import metrics_endpoint
        from services.monitor.entrypoints.feedback_cli import feedback_event

        events = [feedback_event(rid, label, self.goal.name, "human_review", "demo reviewers") for rid, label in self.state.labelled]
        publish_now(self.settings, [Outgoing(e, self.goal.name) for e in events], source="demo/reviewers")
        address = metrics_endpoint(self.settings, "monitor")
        assert address, "the monitor names no /metrics address in its ready file"

        def live() -> dict[str, float]:
            samples = read_samples(scrape(self.settings, address))
            return {s.name: s.value for s in samples
                    if s.name in ("tuneline_live_accuracy", "tuneline_live_calibration_error") and s.labels.get("goal") == self.goal.name
                    and s.labels.get("adapter") == short_digest(self.state.champion)}

        deadline = time.monotonic() + 120
        seen = live()
        while "tuneline_live_accuracy" not in seen and time.monotonic() < deadline:
            time.sleep(0.5)
            seen = live()
        assert "tuneline_live_accuracy" in seen, f"no live accuracy window closed for {short(self.state.champion)} within 120 s"
        evaluated = self.state.accuracy["initial export"]
        return (f"{len(events)} labels recorded; live accuracy {seen['tuneline_live_accuracy']:.1%} "
                f"(calibration error {seen.get('tuneline_live_calibration_error', float('nan')):.3f}) on "
                f"{short(self.state.champion)}, evaluated at {evaluated:.1%}")

    def weak_version(self) -> str:
        """A partial export: its candidate must fail the gate and never take traffic."""
        published = self.publish_dataset(self.data.partial, "banking77-partial-export")
        run, gate = self.train_and_gate(published, "partial export")
        digest = run.message.adapter.digest
        assert gate.type == "eval.failed", "a model trained on a partial export must not pass the gate"
        failed = [c.name for c in gate.message.outcome.criteria if not c.passed]
        assert not self.watch.find("deployment.started", lambda e: e.message.adapter.digest == digest)  # type: ignore[union-attr]
        self.state.rollout.append(f"{short(digest)} refused by the gate ({', '.join(failed)})")
        return f"candidate {short(digest)} failed on {', '.join(failed)}; never deployed"

    def canary(self) -> str:
        """The complete export rolls out as a canary under real traffic and is promoted."""
        t0 = time.monotonic()
        published = self.publish_dataset(self.data.complete, "banking77-complete-export")
        run, gate = self.train_and_gate(published, "complete export")
        assert gate.type == "eval.passed", "the complete export must pass its gate"
        digest = run.message.adapter.digest
        self.wait(("deployment.started",), lambda e: e.message.adapter.digest == digest, "deployer: starting the canary")
        self.state.c2_ratio = (time.monotonic() - t0) / max(run.message.wall_seconds, 1e-9)
        done = self._traffic_until(demo_data.utterances("banking77", 1600), ("deployment.promoted", "deployment.rolled_back"),
                                   lambda e: _digest_of(e) == digest, "canary: real traffic until the last step")
        assert done.type == "deployment.promoted", f"the canary was rolled back: {done.message.reason}"
        steps = ", ".join(f"{s.percent}% ({s.requests} req)" for s in done.message.steps)
        self.state.rollout.append(f"{short(digest)} canary {steps} -> promoted")
        self.state.candidate = digest
        return f"{short(digest)} promoted after {steps}"

    def drift(self) -> str:
        """Out-of-domain traffic: drift detected, the new champion rolled back to the previous one."""
        texts = demo_data.utterances("clinc150", 2500) + demo_data.utterances("hwu64", 1000)
        digest = self.state.candidate
        first_sent: list[float] = []
        # Detection needs drift_windows full windows of shifted traffic, so C1 is bound by the
        # request rate: 8 in flight lets micro-batching roughly double it over the canary phase.
        done = self._traffic_until(texts, ("deployment.rolled_back",), lambda e: e.message.adapter_digest == digest,
                                   "monitor: watching shifted traffic", first_sent, concurrency=8)
        self.state.c1_seconds = self.watch.seen_at(done) - first_sent[0]  # type: ignore[union-attr]
        # The incident's drift.detected follows its rollback request: it waits for the window's report.
        detected = self.wait(("drift.detected",), lambda e: e.message.adapter_digest == digest,
                             "monitor: the incident's drift report", timeout_s=120).message
        assert isinstance(detected, ev.DriftDetected) and detected.report_html.digest, "the incident carries its report"
        self.state.rollout.append(f"{short(digest)} rolled back ({done.message.trigger}: {done.message.reason}); "
                                  f"{short(done.message.restored_digest)} restored")
        assert done.message.restored_digest == self.state.champion, "the previous champion serves again"
        return (f"drift share {detected.drift_share:.2f} over {detected.consecutive_windows} windows; "
                f"rolled back {self.state.c1_seconds:.1f} s after the first shifted request; "
                f"report: tuneline drift {self.goal.name} --open")

    def _traffic_until(self, texts: list[str], events: tuple[str, ...], where: Callable[[Event], bool], what: str,
                       first_sent: list[float] | None = None, concurrency: int = 2) -> Event:
        stop = threading.Event()
        gen = LoadGenerator(self.settings, self.goal.name, concurrency)
        result: list[Traffic] = []

        def drive() -> None:
            while not stop.is_set():
                traffic = gen.send(texts, until=stop)
                if first_sent is not None and not first_sent:
                    first_sent.append(traffic.first_sent_at)
                result.append(traffic)

        thread = threading.Thread(target=drive, daemon=True)
        thread.start()
        try:
            return self.wait(events, where, what)
        finally:
            stop.set()
            thread.join(30)
            gen.close()
            for traffic in result:
                self._count(traffic)

    def _count(self, traffic: Traffic) -> None:
        self.state.sent += traffic.sent
        self.state.answered += traffic.ok
        self.state.failed += sum(traffic.failed.values())

    def alerts(self) -> str:
        """The drift incident, from the monitor's query API: one incident however many alerts, resolved by the
        rollback, every delivery to the configured sinks accepted."""
        from tuneline.monitor.v1 import query_pb2, query_pb2_grpc

        from services.kernel import grpc_tls

        def drift_incident() -> query_pb2.Incident | None:
            with grpc_tls.channel(self.settings, self.settings.monitor_address) as channel:
                stub = query_pb2_grpc.QueryStub(channel)  # type: ignore[no-untyped-call]  # generated, unannotated
                reply = stub.ListIncidents(query_pb2.ListIncidentsRequest(), metadata=grpc_tls.bearer(self.settings), timeout=30)
            found = [i for i in reply.incidents if i.key == f"drift:{self.goal.name}"]
            return found[0] if found else None

        deadline = time.monotonic() + 60
        incident = drift_incident()
        while (incident is None or incident.status != "resolved" or incident.deliveries_pending) and time.monotonic() < deadline:
            time.sleep(0.5)
            incident = drift_incident()
        assert incident is not None, "the monitor has no drift incident for the goal"
        assert incident.status == "resolved", "the rollback resolves the drift incident"
        assert not incident.deliveries_pending, f"{incident.deliveries_pending} alert deliveries still pending"
        return (f"drift incident: {incident.alerts} alert(s), delivered once and resolved by the rollback"
                + (f" ({incident.deliveries_failed} failed attempt(s) retried)" if incident.deliveries_failed else ""))

    def metrics(self) -> str:
        """Every service's /metrics, read with Prometheus' own text parser: the deployer counted what the demo sent."""
        from services.kernel.metrics import read_samples, sample_total, scrape
        from services.kernel.runtime import metrics_endpoint
        from services.stack.processes import SERVICES

        folder = self.settings.path("metrics", ".keep").parent
        scraped, calls, answered = 0, 0.0, 0.0
        for service in SERVICES:
            address = metrics_endpoint(self.settings, service)
            assert address, f"{service} names no /metrics address in its ready file"
            text = scrape(self.settings, address)
            (folder / f"{service}.prom").write_text(text)
            samples = read_samples(text)
            scraped += len(samples)
            assert sample_total(samples, "target_info", service_name=service), f"{service}'s /metrics does not say it is {service}"
            if service == "deployer":
                calls = sample_total(samples, "rpc_server_call_duration_seconds_count",
                                     rpc_method="tuneline.serving.v1.Inference/Predict")
                served = "tuneline_serving_request_duration_seconds_count"
                answered = (sample_total(samples, served, goal=self.goal.name, status="OK")
                            - sample_total(samples, served, goal=self.goal.name, status="OK", variant="mirror"))
        if self.state.failed == 0:
            assert calls == self.state.sent, f"the deployer counted {calls:.0f} Predict calls; the demo sent {self.state.sent}"
            assert answered == self.state.answered, f"the deployer counted {answered:.0f} answers; the demo got {self.state.answered}"
        else:  # a call the client gave up on may still have been answered
            assert self.state.answered <= answered <= calls <= self.state.sent, \
                f"answered {answered:.0f} of {calls:.0f} calls counted; the demo got {self.state.answered} of {self.state.sent}"
        return (f"{len(SERVICES)} services scraped ({scraped} samples, saved under {folder}); "
                f"the deployer counted {calls:.0f} Predict calls for the demo's {self.state.sent}")

    def lineage(self) -> str:
        """The chain behind one served prediction, from the monitor's query API."""
        from tuneline.monitor.v1 import query_pb2, query_pb2_grpc

        from services.kernel import grpc_tls

        with grpc_tls.channel(self.settings, self.settings.monitor_address) as channel:
            stub = query_pb2_grpc.QueryStub(channel)  # type: ignore[no-untyped-call]  # generated, unannotated
            reply = stub.Lineage(query_pb2.LineageRequest(id=self.state.request_id), metadata=grpc_tls.bearer(self.settings),
                                 timeout=30)
        for step in reply.steps:
            self.console.print(f"    {step.stage:>12}  {step.summary}")
        assert reply.complete and reply.verified, f"lineage incomplete or unverified: {list(reply.problems)}"
        return f"request {self.state.request_id}: {len(reply.steps)} steps back to the publication, every digest verified"

    def registry(self) -> str:
        """The monitor's registry, as `tuneline models` and `tuneline runs compare` ask it: each model's stage
        follows from the events, and the promoted-then-rolled-back run is compared with the first champion's."""
        from tuneline.monitor.v1 import registry_pb2 as r

        from services.kernel.registry_client import ask

        models = ask(lambda s: s.ListModels, r.ListModelsRequest(goal=self.goal.name), self.settings).models
        stages = {m.adapter_digest: m.stage for m in models}
        assert stages.get(self.state.champion) == "champion", f"the restored champion's stage is {stages.get(self.state.champion)}"
        assert stages.get(self.state.candidate) == "retired", f"the rolled-back model's stage is {stages.get(self.state.candidate)}"
        assert list(stages.values()).count("refused") == 1, f"one refused model (the partial export's): {stages}"
        c = ask(lambda s: s.CompareRuns, r.CompareRunsRequest(a=self.state.runs["initial export"], b=self.state.runs["complete export"]),
                self.settings)
        accuracy = next((d for d in c.metrics if d.name == "accuracy"), None)
        assert accuracy is not None and any(e.path == "data.dataset_version" for e in c.envelope), "the runs' data differ"
        paired = (f"McNemar p = {c.paired.p_value:.2g}, {c.changed_total} answers changed" if c.paired.paired
                  else f"not paired ({c.paired.reason})")
        return (f"{len(models)} models: champion, retired, refused as the events made them; initial vs complete export: "
                f"{len(c.envelope)} envelope fields differ, accuracy {accuracy.a:.3f} → {accuracy.b:.3f} ({paired}); "
                f"tuneline runs compare {c.run_a.run_id} {c.run_b.run_id}")

    def run(self) -> bool:
        """Every stage in order; stops at the first that fails."""
        self.watch = EventWatch(self.settings)
        try:
            for name, work in (("goal applied", self.apply_goal), ("initial export: ingest → train → gate → champion", self.first_model),
                               ("real traffic through gRPC", self.serve_traffic),
                               ("ground truth → live accuracy", self.ground_truth),
                               ("weaker version refused by the gate", self.weak_version),
                               ("complete export: canary → promoted", self.canary),
                               ("drift → rollback", self.drift), ("lineage of one prediction", self.lineage),
                               ("registry: stages and a run comparison", self.registry),
                               ("alert incident resolved", self.alerts), ("metrics from every service", self.metrics)):
                if not self.stage(name, work):
                    return False
            return True
        finally:
            self.watch.close()

    def apply_goal(self) -> str:
        """Publish goal.applied for the demo's goal."""
        msg = ev.GoalApplied(goal_name=self.goal.name, goal_version=self.goal.version, goal_json=self.goal.canonical_json(),
                             applied_by="demo")
        publish_now(self.settings, [Outgoing(msg, self.goal.name)], source="demo/cli", signer="operator")
        return f"{self.goal.name} {short(self.goal.version)}"


def _digest_of(e: Event) -> str:
    if e.type in ("deployment.promoted", "deployment.started"):
        return cast("ev.DeploymentPromoted | ev.DeploymentStarted", e.message).adapter.digest
    return cast(ev.DeploymentRolledBack, e.message).adapter_digest


def demo_settings(base: Settings) -> Settings:
    """A fresh namespace and state folder per demo run, on the base broker: a rerun never finds
    its datasets already registered by an earlier run."""
    run = time.strftime("%Y%m%d-%H%M%S")
    return base.replace(state_dir=base.state_dir / "demo" / run, namespace=f"{base.namespace}demo-{run}.",
                        kafka_bootstrap=base.bootstrap)


def as_operator(settings: Settings, kafka: SecureKafka | None) -> Settings:
    """The settings of the demo's own clients: on a secure broker they publish and watch as the operator."""
    return kafka.as_identity(settings, "operator") if kafka else settings


def goal_file(quick: bool) -> Path:
    """The example goal, or its quick variant (a slice of the data, one epoch, looser thresholds)."""
    return REPO_ROOT / "goals" / ("banking77-quick.yaml" if quick else "banking77.yaml")
