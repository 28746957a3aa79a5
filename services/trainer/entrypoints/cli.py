"""The trainer's commands: `tuneline trainer run`, `goal apply`, `runs [ID]`, `runs reproduce ID`."""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import ConfigError, NotFound
from services.kernel.events import Outgoing
from services.kernel.goal import load_goal
from services.kernel.ids import short
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
    first: str | None = typer.Argument(None, help="a run id, or `reproduce`"),
    second: str | None = typer.Argument(None, help="with `reproduce`: the run id"),
) -> None:
    """List runs, show one (`runs ID`), or re-run one from its envelope (`runs reproduce ID`)."""
    if first == "reproduce":
        if not second:
            raise ConfigError("runs reproduce needs a run id", hint="tuneline runs reproduce RUN_ID")
        _reproduce(second)
    elif first:
        _show(first)
    else:
        _list()


def _store() -> Store:
    from services.trainer.bootstrap import open_store

    return open_store(TrainerSettings())


def _list() -> None:
    from services.trainer import store as tables

    rows = _store().run(lambda s: tables.list_runs(s))
    table = Table("run", "goal", "status", "trigger", "accuracy", "adapter", "wall s", "created")
    for r in rows:
        acc = json.loads(r.metrics_json).get("eval_accuracy")
        table.add_row(r.id, r.goal_name, r.status, r.trigger, f"{acc:.4f}" if acc is not None else "-",
                      short(r.adapter_digest) if r.adapter_digest else "-", f"{r.wall_seconds:.0f}",
                      r.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)


def _show(run_id: str) -> None:
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


def _reproduce(run_id: str) -> None:
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
