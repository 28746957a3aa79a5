"""The `tuneline` command: composes the kernel's and each service's commands."""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from rich.console import Console

from services.kernel.errors import TunelineError

SERVICE_CLIS = ("ingest", "trainer", "evaluator", "deployer", "monitor", "stack")

app = typer.Typer(help="Tuneline: governed fine-tuning loops as Kafka events.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
bench = typer.Typer(help="Benchmarks (BENCHMARKS.md): each writes one JSON result.", no_args_is_help=True)


def _compose() -> None:
    from services.kernel import commands

    from benchmarks.bus import bench_bus

    commands.register(app)
    bench.command("bus")(bench_bus)
    for name in SERVICE_CLIS:
        try:
            module = importlib.import_module(f"services.{name}.entrypoints.cli")
            module.register(app, bench)
        except ModuleNotFoundError as err:
            if err.name in (f"services.{name}", f"services.{name}.entrypoints", f"services.{name}.entrypoints.cli"):
                continue  # not installed in this distribution
            logging.getLogger("tuneline.cli").warning("the %s commands are unavailable: %s", name, err)
        except ImportError as err:
            # One service's broken install must not take the whole command line down with it.
            logging.getLogger("tuneline.cli").warning("the %s commands are unavailable: %s", name, err)
    app.add_typer(bench, name="bench")
    _add_health_commands()


def _add_health_commands() -> None:
    """`tuneline <service> health`: exit 0 while the service's ready file is fresh (probes use it)."""
    from services.kernel.runtime import is_ready
    from services.kernel.settings import Settings

    for group in app.registered_groups:
        if group.name not in SERVICE_CLIS or group.typer_instance is None:
            continue

        def health(service: str = group.name) -> None:
            ok = is_ready(Settings(), service)
            Console().print(f"{service}: {'healthy' if ok else 'not ready'}")
            raise typer.Exit(0 if ok else 1)

        health.__doc__ = f"Exit 0 while the {group.name} service is running and healthy."
        group.typer_instance.command("health")(health)


def main() -> None:
    """Entry point: run the CLI, printing errors as a cause and a next step, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _compose()
    err_console = Console(stderr=True)
    try:
        app()
    except TunelineError as err:
        err_console.print(f"[red]error:[/] {err}")
        if err.hint:
            err_console.print(f"[yellow]next:[/] {err.hint}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
