"""The `tuneline` command: composes the kernel's and each service's commands."""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from rich.console import Console
from typer import _click  # typer 0.29 vendors click; TyperGroup is typed with it
from typer.core import TyperGroup

from services.kernel.errors import TunelineError

SERVICE_CLIS = ("ingest", "trainer", "evaluator", "deployer", "monitor", "stack")

app = typer.Typer(help="Tuneline: governed fine-tuning loops as Kafka events.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


class _BenchGroup(TyperGroup):
    """`tuneline bench`: its commands are benchmarks/cli.py's, loaded the first time the group is used.

    This composer is the one place in services/ that knows about benchmarks/ (benchmarks import
    services, never the reverse; tests/unit/kernel/test_structure.py checks it). Loading on first
    use keeps every other `tuneline` call from importing the harnesses.
    """

    def _load(self) -> None:
        if not self.commands:
            from benchmarks.cli import app as bench_app

            self.commands.update(typer.main.get_group(bench_app).commands)

    def list_commands(self, ctx: _click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)


def _compose() -> None:
    from services.kernel import commands, postgres_commands, token_commands

    commands.register(app)
    token_commands.register(app)
    postgres_commands.register(app)
    for name in SERVICE_CLIS:
        try:
            module = importlib.import_module(f"services.{name}.entrypoints.cli")
            module.register(app)
        except ModuleNotFoundError as err:
            if err.name in (f"services.{name}", f"services.{name}.entrypoints", f"services.{name}.entrypoints.cli"):
                continue  # not installed in this distribution
            logging.getLogger("tuneline.cli").warning("the %s commands are unavailable: %s", name, err)
        except ImportError as err:
            # One service's broken install must not take the whole command line down with it.
            logging.getLogger("tuneline.cli").warning("the %s commands are unavailable: %s", name, err)
    bench = typer.Typer(cls=_BenchGroup, help="Benchmarks (BENCHMARKS.md): each writes one JSON result.",
                        no_args_is_help=True)
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
