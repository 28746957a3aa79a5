"""The demo's closing summary: stages, numbers, rollout history, where to look next."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from services.kernel.ids import short
from services.stack.demo import DemoState


def print_summary(console: Console, state: DemoState, trace_hint: str) -> None:
    """Print the stage table and the facts a user wants after the demo."""
    table = Table(title="Tuneline demo", show_lines=False)
    for col in ("stage", "result", "seconds", "detail"):
        table.add_column(col)
    for s in state.stages:
        table.add_row(s.name, "[green]ok[/]" if s.ok else "[red]FAILED[/]", f"{s.seconds:.1f}", s.detail[:110])
    console.print(table)
    for label, acc in state.accuracy.items():
        console.print(f"accuracy on the eval split, {label}: {acc:.3f}")
    for line in state.rollout:
        console.print(f"rollout: {line}")
    console.print(f"C1 first shifted request → rolled back: {state.c1_seconds:.1f} s (budget 30 s); "
                  f"C2 published → canary serving ÷ training: {state.c2_ratio:.2f}")
    if state.champion:
        console.print(f"champion now: {short(state.champion)}")
    for uri in state.reports:
        console.print(f"report: {uri}")
    console.print(f"trace of the banking77 publication: {trace_hint}")
