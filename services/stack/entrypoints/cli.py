"""`tuneline up|down|status|demo`."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from services.kernel.settings import Settings
from services.kernel.telemetry import setup_telemetry, shutdown_telemetry

console = Console()


def up() -> None:
    """Start the broker (unless external) and the five services in the background; wait until healthy."""
    s = Settings()
    from services.stack import processes

    with console.status("starting the broker and the services..."):
        states = processes.up(s)
    _print_states(states)
    console.print(f"deployer gRPC {s.deployer_address}; monitor gRPC {s.monitor_address}; logs {s.state_dir / 'logs'}")


def down(keep_broker: bool = typer.Option(False, help="Leave the Kafka broker running.")) -> None:
    """Stop the services cleanly (and the embedded broker)."""
    from services.stack import processes

    stopped = processes.down(Settings(), stop_broker=not keep_broker)
    console.print(f"stopped {', '.join(stopped) if stopped else 'no services'}")


def status() -> None:
    """Each part: up or not, health, consumer lag, and the deployments' traffic split."""
    from services.stack import processes, status_view

    s = Settings()
    _print_states(processes.states(s))
    status_view.print_lag(console, s)
    status_view.print_deployments(console, s)


def _print_states(states: list) -> None:  # type: ignore[type-arg]
    table = Table("service", "pid", "health", "log")
    for st in states:
        table.add_row(st.name, str(st.pid or "-"), "[green]healthy[/]" if st.healthy else "[red]down[/]", str(st.log))
    console.print(table)


def demo(quick: bool = typer.Option(False, "--quick", help="Train on a slice with one epoch: a few minutes."),
         keep: bool = typer.Option(False, help="Leave the services (and a broker the demo started) running afterwards.")) -> None:
    """The whole loop on real data: ingest, training, the gate, a canary, drift and a rollback."""
    from services.kernel import broker
    from services.stack import processes
    from services.stack.demo import Demo, demo_settings, goal_file
    from services.stack.summary import print_summary

    base = Settings()
    started_broker = base.embedded_kafka and broker.read_pid(base) is None
    if base.embedded_kafka:
        with console.status("starting Kafka..."):
            broker.start(base)
    s = demo_settings(base)
    setup_telemetry("demo", s)
    console.print(f"[bold]Tuneline demo[/] — state {s.state_dir}, topics {s.namespace}tuneline.*")
    with console.status("starting ingest, trainer, evaluator, deployer and monitor..."):
        processes.up(s)
    runner = Demo(s, goal_file(quick), console)
    try:
        ok = runner.run()
    finally:
        shutdown_telemetry()
        if not keep:
            processes.down(s, stop_broker=False)
            if started_broker:  # a broker someone else started (tuneline up, a test session) stays up
                broker.stop(base)
    print_summary(console, runner.state, f"tuneline trace {runner.state.trace_id} --state-dir {s.state_dir}")
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    """Add the stack's commands to the root CLI."""
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
    app.command("demo")(demo)
