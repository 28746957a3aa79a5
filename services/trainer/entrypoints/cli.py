"""The trainer's commands: `tuneline trainer run`, `goal apply`, `runs [ID]`, `runs compare A B`, `runs reproduce ID`.

`runs` and `runs compare` ask the monitor's Registry API (services.kernel.registry_client), so they work
against a remote stack; when the monitor does not answer, `runs` shows this machine's trainer store.
`runs reproduce` re-runs a run of this machine's store from its envelope."""

from __future__ import annotations

import getpass
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from tuneline.events.v1 import events_pb2 as ev
from tuneline.monitor.v1 import registry_pb2 as r

from services.kernel.errors import ConfigError, NotFound, TransientError
from services.kernel.events import Outgoing
from services.kernel.goal import load_goal
from services.kernel.ids import short
from services.kernel.registry_client import ask, local_store_exists, num, when
from services.trainer.settings import TrainerSettings

if TYPE_CHECKING:
    from services.kernel.store import Store

console = Console(soft_wrap=True)  # digests and ids never break across lines
trainer_app = typer.Typer(help="The trainer service (Ray Train fine-tuning).", no_args_is_help=True)
goal_app = typer.Typer(help="Goals: fine-tuning sprint goals as code.", no_args_is_help=True)


@trainer_app.command("run")
def run_service() -> None:
    """Run the trainer in the foreground (Ctrl-C or SIGTERM stops it cleanly)."""
    from services.trainer.bootstrap import build_runtime

    build_runtime(TrainerSettings()).run()


@goal_app.command("apply")
def goal_apply(path: str = typer.Argument(..., help="the goal YAML file")) -> None:
    """Validate a goal, compute its version, and publish goal.applied."""
    from services.kernel.outbox import publish_now

    goal = load_goal(path)
    message = ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json(),
                             applied_by=getpass.getuser())
    [event_id] = publish_now(TrainerSettings(), [Outgoing(message, subject=goal.name)], source="cli/goal", signer="operator")
    console.print(f"applied goal [bold]{goal.name}[/] version {short(goal.version)} (event {event_id})")


def runs(
    first: str | None = typer.Argument(None, help="a run id (or a prefix), `compare` or `reproduce`"),
    second: str | None = typer.Argument(None, help="with `compare`: run A; with `reproduce`: the run id"),
    third: str | None = typer.Argument(None, help="with `compare`: run B"),
    goal: str = typer.Option("", help="list one goal's runs"),
    limit: int = typer.Option(50, help="how many runs to list"),
    html: Path | None = typer.Option(None, "--html", help="with `compare`: also write the comparison as an HTML page"),
    examples: int = typer.Option(20, help="with `compare`: how many changed answers to list"),
) -> None:
    """List runs, show one (`runs ID`), compare two (`runs compare A B`), or re-run one (`runs reproduce ID`)."""
    if first == "reproduce":
        if not second:
            raise ConfigError("runs reproduce needs a run id", hint="tuneline runs reproduce RUN_ID")
        reproduce_run(second)
    elif first == "compare":
        if not second or not third:
            raise ConfigError("runs compare needs two run ids", hint="tuneline runs compare RUN_A RUN_B [--html FILE]")
        compare_runs(second, third, html, examples)
    else:
        _runs(first or "", goal, limit)


def _runs(run_id: str, goal: str, limit: int) -> None:
    try:
        found = ask(lambda s: s.ListRuns, r.ListRunsRequest(goal=goal, run_id=run_id, limit=limit)).runs
    except TransientError as err:
        if not local_store_exists("trainer"):
            raise
        console.print(f"[yellow]{err}[/]: showing this machine's trainer store")
        show_run(run_id) if run_id else list_runs()
        return
    if run_id:
        if not found:
            raise NotFound(f"no run {run_id!r} in the registry", hint="tuneline runs lists the runs")
        if len(found) == 1:
            _show_run(found[0])
            return
    table = Table("run", "goal", "status", "method", "accuracy", "adapter", "wall s", "started")
    for x in found:
        acc = x.metrics.get("eval_accuracy", math.nan)
        table.add_row(x.run_id, x.goal_name, x.status, x.method or "-", num(acc), short(x.adapter.digest) if x.adapter.digest else "-",
                      f"{x.wall_seconds:.0f}", when(x.started_unix_ms))
    console.print(table if found else "no runs in the registry")


def _show_run(x: r.RunRecord) -> None:
    console.print(f"run [bold]{x.run_id}[/]  goal {x.goal_name} ({short(x.goal_version)})  dataset {x.dataset_name} "
                  f"({short(x.dataset_version)})  method {x.method or '-'}")
    console.print(f"status [bold]{x.status}[/]  attempts {x.attempts}  wall {x.wall_seconds:.1f}s  "
                  f"started {when(x.started_unix_ms)}  finished {when(x.finished_unix_ms)}")
    if x.failure_reason:
        console.print(f"reason: {x.failure_reason}")
    if x.adapter.digest:
        console.print(f"adapter {x.adapter.digest}\n  at {x.adapter.uri}")
        console.print(f"metrics {dict(sorted(x.metrics.items()))}")
    if x.envelope.digest:
        console.print(f"envelope {x.envelope.digest} (verified)")
        console.print(x.envelope_json)


def compare_runs(a: str, b: str, html: Path | None = None, examples: int = 20) -> r.CompareRunsResponse:
    """Print (and with `html`, write) the comparison of run A with run B (deltas are B - A)."""
    c: r.CompareRunsResponse = ask(lambda s: s.CompareRuns, r.CompareRunsRequest(a=a, b=b, max_examples=max(examples, 1)))
    console.print(f"A: run [bold]{c.run_a.run_id}[/] ({c.run_a.goal_name}, dataset {short(c.run_a.dataset_version)}, "
                  f"eval {short(c.eval_a, 13) or '-'})")
    console.print(f"B: run [bold]{c.run_b.run_id}[/] ({c.run_b.goal_name}, dataset {short(c.run_b.dataset_version)}, "
                  f"eval {short(c.eval_b, 13) or '-'})")
    env = Table("section", "envelope field", "A", "B", title="envelope: what differs")
    for e in c.envelope:
        env.add_row(e.section, e.path.split(".", 1)[1], e.a[:60], e.b[:60])
    console.print(env if c.envelope else "envelope: identical")
    crit = Table("criterion", "A", "B", "B - A", "A", "B", "threshold", title="gate criteria")
    for k in c.criteria:
        crit.add_row(k.name, num(k.a), num(k.b), num(k.delta, "+.4f"), "pass" if k.a_passed else "[red]FAIL[/]",
                     "pass" if k.b_passed else "[red]FAIL[/]", f"{k.comparator} {num(k.threshold, '.4g')}")
    console.print(crit)
    labels = sorted((d for d in c.labels if math.isfinite(d.delta)), key=lambda d: abs(d.delta), reverse=True)[:10]
    if labels:
        lt = Table("label", "F1 A", "F1 B", "B - A", title="per-label F1, largest changes")
        for d in labels:
            lt.add_row(d.name, num(d.a), num(d.b), num(d.delta, "+.4f"))
        console.print(lt)
    for d in c.slices:
        console.print(f"slice {d.name}: accuracy {num(d.a)} → {num(d.b)} ({num(d.delta, '+.4f')})")
    p = c.paired
    if p.paired:
        console.print(f"paired test ({p.test}) on {p.rows} rows: accuracy {p.accuracy_a:.4f} → {p.accuracy_b:.4f}; "
                      f"only A right {p.only_a_correct}, only B right {p.only_b_correct}, p = {p.p_value:.3g}")
        console.print(f"{c.changed_total} rows changed answer" + (f"; the first {len(c.changed)}:" if c.changed else ""))
        for x in c.changed:
            console.print(f"  row {x.row}: truth {x.truth}; A {x.a} → B {x.b}" + (f"  [dim]{x.text[:80]}[/]" if x.text else ""))
    else:
        console.print(f"not paired: {p.reason}")
    for problem in c.problems:
        console.print(f"[yellow]{problem}[/]")
    if html is not None:
        from services.kernel.compare_page import render_comparison

        html.write_text(render_comparison(c), encoding="utf-8")
        console.print(f"HTML comparison: [bold]{html}[/]")
    return c


def _store() -> Store:
    from services.trainer.bootstrap import open_store

    return open_store(TrainerSettings())


def list_runs() -> None:
    """This machine's trainer store's runs (what `tuneline runs` shows when the monitor does not answer)."""
    from services.trainer import store as tables

    rows = _store().run(lambda s: tables.list_runs(s))
    table = Table("run", "goal", "status", "trigger", "accuracy", "adapter", "wall s", "created")
    for row in rows:
        acc = json.loads(row.metrics_json).get("eval_accuracy")
        table.add_row(row.id, row.goal_name, row.status, row.trigger, f"{acc:.4f}" if acc is not None else "-",
                      short(row.adapter_digest) if row.adapter_digest else "-", f"{row.wall_seconds:.0f}",
                      row.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)


def show_run(run_id: str) -> None:
    """One run from this machine's trainer store, with its envelope."""
    from services.kernel.blobs import BlobStore
    from services.kernel.jobs import job_status
    from services.trainer import store as tables

    store = _store()
    run = store.run(lambda s: s.get(tables.RunRow, run_id))
    if run is None:
        raise NotFound(f"no run {run_id}", hint="tuneline runs lists the runs")
    job = store.run(lambda s: job_status(s, run.job_id))
    console.print(f"run [bold]{run.id}[/]  goal {run.goal_name} ({short(run.goal_version)})  dataset "
                  f"{run.dataset_name} ({short(run.dataset_version)})  trigger {run.trigger}")
    console.print(f"status [bold]{run.status}[/]  attempts {run.attempts}  progress "
                  f"{(job.progress if job else 0) * 100:.0f}% {job.message if job else ''}  wall {run.wall_seconds:.1f}s")
    if run.reason:
        console.print(f"reason: {run.reason}")
    if run.adapter_digest:
        console.print(f"adapter {run.adapter_digest}\n  at {run.adapter_uri}")
        console.print(f"metrics {json.loads(run.metrics_json)}")
    if run.envelope_digest:
        data = BlobStore.from_settings(TrainerSettings()).get_bytes(ev.ArtifactRef(digest=run.envelope_digest, uri=run.envelope_uri))
        envelope = json.loads(data)
        envelope.pop("goal_json", None)
        console.print(f"envelope {run.envelope_digest}")
        console.print_json(json.dumps(envelope))


def reproduce_run(run_id: str) -> None:
    """Re-run a run of this machine's trainer store from its envelope; exit 2 when the bytes differ."""
    from services.kernel.blobs import BlobStore
    from services.trainer.reproduce import reproduce

    settings = TrainerSettings()
    with console.status(f"re-running {run_id} from its envelope..."):
        result = reproduce(settings, _store(), BlobStore.from_settings(settings), run_id)
    if result.identical:
        console.print(f"[green]reproduced[/]: adapter digest {result.reproduced_digest} matches ({result.wall_seconds:.0f}s)")
        return
    console.print(f"[yellow]differs[/]: original {result.original_digest}, re-run {result.reproduced_digest}")
    console.print(f"largest weight difference {result.max_weight_difference:.3g}; metric differences {result.metric_differences}")
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the trainer's commands to `tuneline`."""
    app.add_typer(trainer_app, name="trainer")
    app.add_typer(goal_app, name="goal")
    app.command("runs")(runs)
