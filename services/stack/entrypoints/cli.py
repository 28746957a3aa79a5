"""`tuneline up|down|status|demo`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from services.kernel.settings import Settings
from services.kernel.telemetry import setup_telemetry, shutdown_telemetry

if TYPE_CHECKING:
    from services.kernel.broker_security import SecureKafka

console = Console()


SecureOption = typer.Option(False, "--secure", help="Kafka with SASL_SSL and ACLs (each service as its own identity; "
                            "credentials under the state folder's kafka-secure/), mTLS and a scoped token on both gRPC "
                            "servers (client settings in tls/client.env), artifacts encrypted at rest.")


def _secure_kafka(settings: Settings, secure: bool) -> SecureKafka | None:
    """The credentials of the broker `--secure` uses (the one of this state folder), or None for plaintext."""
    from services.kernel.broker_security import SecureKafka

    return SecureKafka.of(settings) if secure else None


def _secured(settings: Settings, secure: bool) -> Settings:
    """With `--secure`: gRPC mTLS with a fresh operator token, and an at-rest key (services.stack.secure)."""
    from services.stack.secure import plaintext, sealed_at_rest, secure_grpc

    if not secure:
        plaintext(settings)
        return settings

    return sealed_at_rest(secure_grpc(settings))


def _as_operator_on_own_secure_stack(settings: Settings) -> Settings:
    """Against this state folder's own secure stack the CLI acts as the operator: on its secure broker unless
    TUNELINE_KAFKA_* say who, and with the client certificate and token of `up --secure` unless TUNELINE_GRPC_* do."""
    from services.kernel import broker
    from services.kernel.broker_security import SecureKafka
    from services.stack.secure import client_settings

    if settings.embedded_kafka and not settings.kafka_security_protocol and broker.is_secure(settings):
        settings = SecureKafka.of(settings).as_identity(settings, "operator")
    return client_settings(settings)


StoreOption = typer.Option("", "--store", help="The services' stores: a SQLAlchemy URL ({service} stands for the service "
                           "name), or `postgres` for the embedded PostgreSQL server (started if needed). Default: "
                           "TUNELINE_STORE_URL, else one SQLite file per service.")


def _with_store(base: Settings, settings: Settings, store: str, prefix: str = "tuneline") -> tuple[Settings, bool]:
    """`settings` with the stores `--store` names; and whether the embedded PostgreSQL was started for them."""
    if not store:
        return settings, False
    if store != "postgres":
        return settings.replace(store_url=store), False
    from services.kernel import postgres

    started = not postgres.answering(base)
    if started:
        with console.status("starting PostgreSQL..."):
            postgres.start(base)
    postgres.create_service_databases(base, prefix)
    return settings.replace(store_url=postgres.store_url(base, prefix)), started


def up(secure: bool = SecureOption, store: str = StoreOption) -> None:
    """Start the broker (unless external) and the five services in the background; wait until healthy."""
    base = Settings()
    from services.stack import processes

    s, _ = _with_store(base, _secured(base, secure), store)
    with console.status("starting the broker and the services..."):
        states = processes.up(s, kafka=_secure_kafka(base, secure))
    _print_states(states)
    console.print(f"deployer gRPC {s.deployer_address}; monitor gRPC {s.monitor_address}; logs {s.state_dir / 'logs'}")
    if secure:
        from services.kernel.broker_security import SecureKafka

        console.print(f"to use the CLI against it: set -a; . {SecureKafka.of(base).folder / 'operator.env'}; "
                      f". {s.state_dir / 'tls' / 'client.env'}; set +a")


def down(keep_broker: bool = typer.Option(False, help="Leave the Kafka broker (and the embedded PostgreSQL) running.")) -> None:
    """Stop the services cleanly (and the embedded broker and PostgreSQL server)."""
    from services.kernel import postgres
    from services.stack import processes

    s = Settings()
    stopped = processes.down(s, stop_broker=not keep_broker)
    if not keep_broker and postgres.stop(s):
        stopped.append("postgres")
    console.print(f"stopped {', '.join(stopped) if stopped else 'no services'}")


def status(window: float = typer.Option(2.0, "--window", min=0.0, max=60.0,
                                         help="Seconds between two scrapes: request rate and p99 are over that interval "
                                              "(0: totals only).")) -> None:
    """Each part: up or not, health, headline metrics, consumer lag, and the deployments' traffic split."""
    from services.stack import processes, status_view

    s = _as_operator_on_own_secure_stack(Settings())
    _print_states(processes.states(s))
    status_view.print_metrics(console, s, processes.SERVICES, window)
    status_view.print_lag(console, s)
    status_view.print_deployments(console, s)


def _print_states(states: list) -> None:  # type: ignore[type-arg]
    table = Table("service", "pid", "health", "log")
    for st in states:
        table.add_row(st.name, str(st.pid or "-"), "[green]healthy[/]" if st.healthy else "[red]down[/]", str(st.log))
    console.print(table)


def demo(quick: bool = typer.Option(False, "--quick", help="Train on a slice with one epoch: a few minutes."),
         keep: bool = typer.Option(False, help="Leave the services (and a broker the demo started) running afterwards."),
         secure: bool = SecureOption, store: str = StoreOption) -> None:
    """The whole loop on real data: ingest, training, the gate, a canary, drift and a rollback."""
    from services.kernel import broker
    from services.stack import processes
    from services.stack.demo import Demo, as_operator, demo_settings, goal_file
    from services.stack.summary import print_summary

    base = Settings()
    kafka = _secure_kafka(base, secure)
    started_broker = base.embedded_kafka and broker.read_pid(base) is None
    if base.embedded_kafka:
        with console.status("starting Kafka..."):
            broker.start(base, secure=secure)
    run = demo_settings(base)
    # With PostgreSQL, each demo run gets databases of its own, as it gets a state folder of its own.
    s, started_postgres = _with_store(base, _secured(run, secure), store, prefix=run.namespace.strip(".").replace("-", "_"))
    setup_telemetry("demo", s)
    console.print(f"[bold]Tuneline demo[/] — state {s.state_dir}, topics {s.namespace}tuneline.*")
    with console.status("starting ingest, trainer, evaluator, deployer and monitor..."):
        processes.up(s, kafka=kafka)
    runner = Demo(as_operator(s, kafka), goal_file(quick), console)
    try:
        ok = runner.run()
    finally:
        shutdown_telemetry()
        if not keep:
            processes.down(s, stop_broker=False)
            if started_broker:  # a broker someone else started (tuneline up, a test session) stays up
                broker.stop(base)
            if started_postgres:
                from services.kernel import postgres

                postgres.stop(base)
    print_summary(console, runner.state, f"tuneline trace {runner.state.trace_id} --state-dir {s.state_dir}")
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    """Add the stack's commands to the root CLI."""
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
    app.command("demo")(demo)
