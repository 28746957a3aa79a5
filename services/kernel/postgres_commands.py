"""`tuneline postgres`: the embedded PostgreSQL server for the services' stores (services.kernel.postgres)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from services.kernel import postgres
from services.kernel.settings import Settings

console = Console()
postgres_app = typer.Typer(help="The embedded PostgreSQL server (the services' stores, instead of SQLite files).",
                           no_args_is_help=True)
StateDir = typer.Option(None, "--state-dir", help="State folder (default: TUNELINE_STATE_DIR or ./.tuneline).")


def _settings(state_dir: str | None) -> Settings:
    return Settings(state_dir=Path(state_dir)) if state_dir else Settings()


@postgres_app.command("start")
def postgres_start(state_dir: str | None = StateDir) -> None:
    """Start the server in the background (idempotent; the first start makes the cluster and the databases)."""
    s = _settings(state_dir)
    with console.status("starting PostgreSQL..."):
        st = postgres.start(s)
    console.print(f"PostgreSQL is up at [bold]{st.address}[/]; data {st.data_dir}; log {st.log_file}")
    # The password stays out of terminals and CI logs: `tuneline postgres url` prints the whole URL.
    console.print("point the services at it with TUNELINE_STORE_URL=\"$(tuneline postgres url)\", or `tuneline up --store postgres`")


@postgres_app.command("stop")
def postgres_stop(state_dir: str | None = StateDir) -> None:
    """Stop the server (fast shutdown)."""
    console.print("stopped PostgreSQL" if postgres.stop(_settings(state_dir)) else "PostgreSQL was not running")


@postgres_app.command("status")
def postgres_status(state_dir: str | None = StateDir) -> None:
    """Whether the server runs and answers; exit 1 when it does not answer."""
    st = postgres.status(_settings(state_dir))
    console.print(f"PostgreSQL {st.address}: {'answering' if st.answering else 'not answering'} "
                  f"({'running' if st.running else 'not running'}); data {st.data_dir}")
    raise typer.Exit(0 if st.answering else 1)


@postgres_app.command("url")
def postgres_url(state_dir: str | None = StateDir) -> None:
    """Print the TUNELINE_STORE_URL of the embedded server (`{service}` stands for each service's database)."""
    typer.echo(postgres.store_url(_settings(state_dir)))


def register(app: typer.Typer) -> None:
    """Add `tuneline postgres` to the command line."""
    app.add_typer(postgres_app, name="postgres")
