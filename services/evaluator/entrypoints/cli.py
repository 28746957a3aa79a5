"""Evaluator commands: `tuneline evaluator run`, `tuneline evals [ID]`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import NotFound, TransientError
from services.kernel.ids import short

if TYPE_CHECKING:
    from services.evaluator.store import EvalRow

console = Console()


def run() -> None:
    """Run the evaluator in the foreground (consumes run.finished, goal.applied, deployment.*)."""
    from services.evaluator.bootstrap import build_runtime

    build_runtime().run()


def _rows(eval_id: str | None, limit: int) -> list[EvalRow]:
    import sqlalchemy as sa

    from services.evaluator.bootstrap import open_store
    from services.evaluator.settings import EvaluatorSettings
    from services.evaluator.store import EvalRow

    store = open_store(EvaluatorSettings())
    query = sa.select(EvalRow).order_by(EvalRow.created_at.desc()).limit(limit)
    if eval_id:
        query = sa.select(EvalRow).where(sa.or_(EvalRow.eval_id.startswith(eval_id), EvalRow.run_id.startswith(eval_id)))
    return store.run(lambda s: list(s.scalars(query)))


def _num(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:.4g}"


def _export(out: ev.EvalOutcome, dest: Path | None, show: bool) -> None:
    from services.evaluator.settings import EvaluatorSettings
    from services.kernel.report_files import export_report, open_report

    path = export_report(EvaluatorSettings(), out.report_html, f"eval-{out.eval_id}", dest)
    console.print(f"HTML report (verified copy): [bold]{path}[/]")
    if show and not open_report(path):
        console.print("no browser to open it here: open the file above")


def _outcomes(eval_id: str | None, limit: int) -> list[tuple[ev.EvalOutcome, str]]:
    """Gate decisions from the registry (the monitor), or this machine's evaluator store when it does not answer."""
    from tuneline.monitor.v1 import registry_pb2 as r

    from services.kernel.registry_client import ask, local_store_exists, when

    try:
        found = ask(lambda s: s.ListEvals, r.ListEvalsRequest(id=eval_id or "", limit=limit)).evals
        return [(e.outcome, when(e.time_unix_ms)) for e in found]
    except TransientError as err:
        if not local_store_exists("evaluator"):
            raise
        console.print(f"[yellow]{err}[/]: showing this machine's evaluator store")
    return [(ev.EvalOutcome.FromString(row.outcome), f"{row.created_at:%Y-%m-%d %H:%M:%S}") for row in _rows(eval_id, limit)]


def _show(out: ev.EvalOutcome, html: Path | None, path: bool = False, show: bool = False) -> None:
    verdict = "[green]PASSED[/]" if out.passed else "[red]FAILED[/]"
    console.print(f"eval [bold]{out.eval_id}[/] of run {out.run_id} ({out.goal_name}): {verdict}")
    console.print(f"adapter {out.adapter.digest}\n{out.summary}")
    table = Table("criterion", "value", "threshold", "decision", "reason")
    for c in out.criteria:
        table.add_row(c.name, _num(c.value), f"{c.comparator} {_num(c.threshold)}",
                      "[green]pass[/]" if c.passed else "[red]FAIL[/]", c.reason)
    console.print(table)
    if out.HasField("champion"):
        ch = out.champion
        console.print(f"vs champion {short(ch.champion_digest)}: {ch.test} statistic {ch.statistic:.3f}, "
                      f"p {ch.p_value:.4g}, delta {ch.delta:+.4f} on {ch.rows} rows")
    console.print(f"HTML report: [bold]{out.report_html.uri or '—'}[/]\nJSON report: {out.report_json.uri or '—'}")
    if (html is not None or path or show) and out.report_html.digest:
        _export(out, html, show)


def evals(
    eval_id: str = typer.Argument(None, help="An eval or run id (a prefix is enough): show its criteria."),
    limit: int = typer.Option(20, "--limit", help="How many recent evaluations to list."),
    html: Path = typer.Option(None, "--html", help="With an ID: copy its HTML report (verified) to this file."),
    path: bool = typer.Option(False, "--path", help="With an ID: copy its HTML report (verified) under the state "
                                                    "folder's reports/ and print where."),
    show: bool = typer.Option(False, "--open", help="With an ID: as --path, then open it in the browser."),
) -> None:
    """List recent gate decisions, or show one with every criterion and where its HTML report is."""
    rows = _outcomes(eval_id, limit)
    if eval_id:
        if not rows:
            raise NotFound(f"no evaluation {eval_id!r}", hint="`tuneline evals` lists recent ones")
        for out, _ in rows:
            _show(out, html, path, show)
        return
    table = Table("eval", "goal", "run", "adapter", "decision", "summary", "when")
    for o, at in rows:
        table.add_row(short(o.eval_id, 13), o.goal_name, short(o.run_id, 13), short(o.adapter.digest),
                      "[green]passed[/]" if o.passed else "[red]failed[/]", o.summary[:80], at)
    console.print(table if rows else "no evaluations yet")


def register(app: typer.Typer) -> None:
    """Add `evaluator run` and `evals`."""
    group = typer.Typer(help="The evaluator: the fail-closed acceptance gate and its reports.", no_args_is_help=True)
    group.command("run")(run)
    app.add_typer(group, name="evaluator")
    app.command("evals")(evals)
