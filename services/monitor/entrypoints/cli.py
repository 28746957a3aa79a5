"""`tuneline monitor run`, `tuneline audit verify|head`, `tuneline lineage ID`, `tuneline alerts`, `tuneline drift GOAL`,
`tuneline feedback` (services.monitor.entrypoints.feedback_cli).

The user commands talk gRPC to the monitor's Query service (settings.monitor_address, bearer token),
so they work against a remote deployment too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from tuneline.monitor.v1 import query_pb2 as q
from tuneline.monitor.v1 import query_pb2_grpc as q_grpc

from services.kernel.errors import IntegrityError, NotFound
from services.kernel.registry_client import call
from services.monitor.entrypoints import feedback_cli, registry_cli

console = Console()
T = TypeVar("T")


def _call(method: Callable[[q_grpc.QueryStub], Callable[..., T]], request: object) -> T:
    from services.monitor.settings import MonitorSettings

    return call(q_grpc.QueryStub, method, request, MonitorSettings())


def run() -> None:
    """Run the monitor in the foreground (ledger, drift, alerts, query API)."""
    from services.monitor.bootstrap import build
    from services.monitor.settings import MonitorSettings

    build(MonitorSettings()).run()


def verify() -> None:
    """Recompute the ledger's hash chain; name the first bad record."""
    r = _call(lambda s: s.VerifyLedger, q.VerifyLedgerRequest())
    if not r.ok:
        raise IntegrityError(f"ledger tampered: first bad record {r.first_bad_sequence}: {r.problem}",
                             hint="restore the monitor's store from a backup; records before it are intact")
    console.print(f"[green]ledger ok[/]: {r.records} records, head {r.head_hash}")


def head() -> None:
    """Print the ledger's head (sequence and hash): keep it somewhere the ledger's store is not."""
    r = _call(lambda s: s.LedgerHead, q.LedgerHeadRequest())
    console.print(f"{r.sequence} {r.head_hash}")


def lineage(ident: str = typer.Argument(..., help="a request id, adapter digest, run id or dataset version")) -> None:
    """Print the chain from the dataset's publication to the predictions, verifying every artifact."""
    r = _call(lambda s: s.Lineage, q.LineageRequest(id=ident))
    table = Table(title=f"lineage of {r.kind} {r.id}")
    for col in ("stage", "event", "summary", "artifacts"):
        table.add_column(col)
    for step in r.steps:
        arts = ", ".join(f"{a.name} {'ok' if a.verified else 'ALTERED/MISSING'}" for a in step.artifacts)
        table.add_row(step.stage, step.event_id, step.summary + "".join(f"\n  {k}={v}" for k, v in sorted(step.facts.items())), arts)
    console.print(table)
    if r.problems:
        raise IntegrityError("lineage is not trustworthy:\n  " + "\n  ".join(r.problems),
                             hint="an artifact or ledger record on the chain was altered or is missing")
    console.print("[green]complete and verified[/]")


def alerts(open_only: bool = typer.Option(False, "--open", help="Only incidents still firing."),
           limit: int = typer.Option(50, min=1, max=1000, help="At most this many incidents.")) -> None:
    """Open and recent alert incidents: what was delivered to the alert sinks, how often it repeated, whether it resolved."""
    from datetime import UTC, datetime

    r = _call(lambda s: s.ListIncidents, q.ListIncidentsRequest(limit=limit, open_only=open_only))
    if not r.incidents:
        console.print("no incidents" + (" open" if open_only else ""))
        return
    table = Table("status", "severity", "kind", "goal", "summary", "alerts", "opened (UTC)", "delivery")

    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"
    for i in r.incidents:
        status = "[red]firing[/]" if i.status == "firing" else f"resolved {when(i.resolved_unix_ms)}"
        delivery = (f"[yellow]{i.deliveries_pending} pending[/]" if i.deliveries_pending else "delivered") + \
            (f", {i.deliveries_failed} failed attempt(s)" if i.deliveries_failed else "")
        summary = i.summary + (f"\n  report: {i.report_uri}" if i.report_uri else "") + \
            (f"\n  trace: tuneline trace {i.trace_id}" if i.trace_id else "")
        table.add_row(status, i.severity, i.kind, i.goal, summary, str(i.alerts), when(i.opened_unix_ms), delivery)
    console.print(table)


def drift(goal: str = typer.Argument(..., help="The goal whose drift windows to show."),
          limit: int = typer.Option(20, min=1, max=1000, help="At most this many windows, newest first."),
          drifted: bool = typer.Option(False, "--drifted", help="Only windows that drifted."),
          path: bool = typer.Option(False, "--path", help="Copy the newest rendered report (verified) under the state "
                                                          "folder's reports/ and print where."),
          show: bool = typer.Option(False, "--open", help="As --path, then open it in the browser.")) -> None:
    """A goal's judged drift windows (share, verdict, Evidently report) and, with --path/--open, the newest report."""
    from services.kernel.ids import short

    r = _call(lambda s: s.ListDriftWindows, q.ListDriftWindowsRequest(goal=goal, limit=limit, drifted_only=drifted))
    if not r.windows:
        console.print(f"no judged windows for goal {goal!r}")
        return
    table = Table("adapter", "window", "drifted", "share", "span", "report")
    for w in r.windows:
        table.add_row(short(w.adapter_digest), str(w.index), "[red]yes[/]" if w.drifted else "no", f"{w.drift_share:.0%}",
                      f"{w.span_ms / 1000:.1f} s", w.report_uri or "-")
    console.print(table)
    if path or show:
        _export_drift_report(goal, [w for w in r.windows if w.report_digest], show)


def _export_drift_report(goal: str, rendered: list[q.DriftWindow], show: bool) -> None:
    from tuneline.events.v1 import events_pb2 as ev

    from services.kernel.report_files import export_report, open_report
    from services.monitor.settings import MonitorSettings

    if not rendered:
        raise NotFound(f"no rendered drift report for goal {goal!r} yet",
                       hint="reports are rendered for drifted windows and every Nth clean one, seconds after judging")
    w = max(rendered, key=lambda x: (x.drifted, x.index))
    ref = ev.ArtifactRef(digest=w.report_digest, uri=w.report_uri)
    written = export_report(MonitorSettings(), ref, f"drift-{goal}-{w.adapter_digest.removeprefix('sha256:')[:12]}-{w.index}")
    console.print(f"drift report of window {w.index} (verified copy): [bold]{written}[/]")
    if show and not open_report(written):
        console.print("no browser to open it here: open the file above")


def register(app: typer.Typer) -> None:
    """Add `monitor run`, `audit verify|head`, `lineage`, `alerts`, `drift` and `feedback`."""
    monitor = typer.Typer(help="The monitor: ledger, drift, alerts, lineage.", no_args_is_help=True)
    monitor.command("run")(run)
    app.add_typer(monitor, name="monitor")
    audit_app = typer.Typer(help="The hash-chained audit ledger.", no_args_is_help=True)
    audit_app.command("verify")(verify)
    audit_app.command("head")(head)
    app.add_typer(audit_app, name="audit")
    app.command("lineage")(lineage)
    app.command("alerts")(alerts)
    app.command("drift")(drift)
    app.command("feedback")(feedback_cli.feedback)
    registry_cli.register(app)
