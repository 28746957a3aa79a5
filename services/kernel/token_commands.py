"""`tuneline tokens`: issue, list and revoke the scoped gRPC credentials (services.kernel.credentials)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from services.kernel.credentials import credentials_path, issue, parse_expiry, read_credentials, revoke
from services.kernel.settings import Settings

console = Console()
tokens_app = typer.Typer(help="Scoped gRPC tokens (predict, operate, audit) of a tenant, stored as hashes.",
                         no_args_is_help=True)
StateDir = typer.Option(None, "--state-dir", help="State folder (default: TUNELINE_STATE_DIR or ./.tuneline).")


def _path(state_dir: str | None) -> Path:
    return credentials_path(Settings(state_dir=Path(state_dir)) if state_dir else Settings())


@tokens_app.command("issue")
def tokens_issue(name: str = typer.Argument(..., help="A name for the audit trail, e.g. the client application."),
                 tenant: str = typer.Option(..., "--tenant", help="The tenant whose goals it acts on; * for every tenant."),
                 scope: list[str] = typer.Option(..., "--scope", help="predict, operate or audit; repeat for several."),
                 expires: str = typer.Option("90d", "--expires", help="30d, 12h, 90m, an ISO-8601 time, or never."),
                 state_dir: str | None = StateDir) -> None:
    """Issue a token; it is printed once, and only its sha256 is stored."""
    path = _path(state_dir)
    now = datetime.now(UTC).replace(microsecond=0)
    token, cred = issue(path, name, tenant, scope, parse_expiry(expires, now), now)
    until = cred.expires_at.isoformat() if cred.expires_at else "never"
    console.print(f"issued [bold]{name}[/] (tenant {tenant}, scopes {', '.join(cred.scopes)}, expires {until}) into {path}")
    console.print("the token (shown once; give it to the client as TUNELINE_GRPC_TOKEN):")
    print(token)


@tokens_app.command("list")
def tokens_list(state_dir: str | None = StateDir) -> None:
    """The issued credentials (names, tenants, scopes, expiry; never the tokens)."""
    now = datetime.now(UTC)
    table = Table("name", "tenant", "scopes", "expires", "created")
    for c in read_credentials(_path(state_dir)).credentials:
        expired = " (expired)" if c.expires_at and c.expires_at <= now else ""
        table.add_row(c.name, c.tenant, ", ".join(c.scopes), (c.expires_at.isoformat() if c.expires_at else "never") + expired,
                      c.created_at.isoformat())
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: str, state_dir: str | None = StateDir) -> None:
    """Remove a credential; servers stop accepting it within a second."""
    if not revoke(_path(state_dir), name):
        console.print(f"no credential named {name!r}")
        raise typer.Exit(1)
    console.print(f"revoked {name}")


def register(app: typer.Typer) -> None:
    """Add `tuneline tokens` to the command line."""
    app.add_typer(tokens_app, name="tokens")
