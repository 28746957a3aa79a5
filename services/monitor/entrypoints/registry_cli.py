"""The registry's commands, over the monitor's gRPC Registry API (the same token and TLS as every API):
`tuneline goals`, `models` and `datasets` (`runs` and `evals` are the trainer's and the evaluator's, on
the same API). They work against any stack the monitor address reaches.
"""

from __future__ import annotations

import math

import typer
from rich.console import Console
from rich.table import Table
from tuneline.monitor.v1 import registry_pb2 as r

from services.kernel.ids import short
from services.kernel.registry_client import ask, num, when

console = Console(soft_wrap=True)


def goals(name: str = typer.Argument("", help="a goal name: its versions only")) -> None:
    """Goals and every version applied (newest first), with the tenant and the version in force."""
    found = ask(lambda s: s.ListGoals, r.ListGoalsRequest(name=name)).goals
    table = Table("goal", "tenant", "version", "in force", "applied by", "applied")
    for g in found:
        for v in g.versions:
            table.add_row(g.name, g.tenant, short(v.version), "yes" if v.version == g.version_in_force else "",
                          v.applied_by or "-", when(v.applied_unix_ms))
    console.print(table if found else "no goals in the registry")


def models(goal: str = typer.Argument("", help="a goal: its models only"),
           stage: str = typer.Option("", help="candidate | canary | champion | retired | refused"),
           history: bool = typer.Option(False, "--history", help="each model's events, oldest first")) -> None:
    """Every adapter that reached the gate, with its stage (from the events) and where it came from."""
    found = ask(lambda s: s.ListModels, r.ListModelsRequest(goal=goal, stage=stage)).models
    table = Table("goal", "adapter", "stage", "accuracy", "run", "eval", "dataset", "last event")
    for m in found:
        accuracy = m.metrics.get("accuracy", math.nan)
        last = m.history[-1] if m.history else None
        table.add_row(m.goal_name, short(m.adapter_digest), m.stage + (" (held)" if m.held else ""), num(accuracy),
                      short(m.run_id, 13), short(m.eval_id, 13), short(m.dataset_version),
                      f"{last.event} {when(last.time_unix_ms)}" if last else "-")
    console.print(table if found else "no models in the registry" + (f" for goal {goal}" if goal else ""))
    if history:
        for m in found:
            console.print(f"\n[bold]{m.goal_name}[/] {m.adapter_digest} ({m.stage})")
            for e in m.history:
                console.print(f"  {when(e.time_unix_ms)}  {e.event:<22} {e.summary}" + (f"  [dim]by {e.by}[/]" if e.by else ""))


def datasets(name: str = typer.Argument("", help="a dataset name: its versions only")) -> None:
    """Registered dataset versions with their certificate's gates, and rejected publications."""
    found = ask(lambda s: s.ListDatasets, r.ListDatasetsRequest(name=name)).datasets
    table = Table("dataset", "version", "status", "train", "eval", "labels", "gates", "goals", "publisher", "when")
    for d in found:
        gates = f"{sum(g.passed for g in d.certificate)}/{len(d.certificate)} passed"
        table.add_row(d.name, short(d.version) if d.version else "-", d.status if not d.summary else f"{d.status}: {d.summary[:60]}",
                      str(d.train_rows), str(d.eval_rows), str(len(d.labels)), gates, ", ".join(d.goals) or "-",
                      d.publisher or "-", when(d.time_unix_ms))
    console.print(table if found else "no datasets in the registry")


def register(app: typer.Typer) -> None:
    """Add `goals`, `models` and `datasets`."""
    app.command("goals")(goals)
    app.command("models")(models)
    app.command("datasets")(datasets)
