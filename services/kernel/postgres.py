"""The embedded PostgreSQL server: the machine's PostgreSQL binaries, one cluster under the state folder.

`start` makes a cluster in state_dir/postgres/data on first use (initdb; SCRAM password
authentication; the `tuneline` superuser's password in state_dir/postgres/password, mode 0600),
runs it with pg_ctl on 127.0.0.1:postgres_port only (its socket in state_dir/postgres/run), waits until
it answers, and creates one database per service. `store_url` is the TUNELINE_STORE_URL that points
the services there. Started twice, one server runs; `stop` stops it (fast shutdown).

The binaries are found on PATH or in Debian's /usr/lib/postgresql/<version>/bin (`apt-get install
postgresql`). initdb refuses to run as root: run as root, the server runs as the `postgres` user that
Debian's package creates, and owns its data folder.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from services.kernel.errors import ConfigError, DependencyMissing, TransientError
from services.kernel.settings import Settings

SERVICES = ("ingest", "trainer", "evaluator", "deployer", "monitor")
USER = "tuneline"
SERVER_USER = "postgres"  # the account a root-started server runs as


@dataclass(frozen=True)
class PostgresStatus:
    """Whether the embedded server runs, and where."""

    running: bool
    answering: bool
    address: str
    data_dir: Path
    log_file: Path


def _home(settings: Settings) -> Path:
    return settings.state_dir / "postgres"


def _data(settings: Settings) -> Path:
    return _home(settings) / "data"


def _log(settings: Settings) -> Path:
    return _home(settings) / "server.log"


def binary(name: str) -> str:
    """A PostgreSQL program (initdb, pg_ctl): on PATH, else the newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if versions:
        return str(versions[-1])
    raise DependencyMissing(f"PostgreSQL's {name} is not installed",
                            hint="install PostgreSQL (Debian: apt-get install postgresql), or point TUNELINE_STORE_URL at a server")


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise ConfigError(f"running as root, the PostgreSQL server needs the {SERVER_USER!r} account, which does not exist",
                          hint="install Debian's postgresql package (it creates the account), or run as another user") from None
    return ["runuser", "-u", SERVER_USER, "--", *cmd]


def _give_to_server_user(*paths: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def password(settings: Settings) -> str:
    """The `tuneline` superuser's password (ConfigError before the first start)."""
    try:
        return (_home(settings) / "password").read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"there is no embedded PostgreSQL under {_home(settings)}",
                          hint="run `tuneline postgres start` first") from None


def url(settings: Settings, database: str = "postgres") -> str:
    """A SQLAlchemy URL of one database of the embedded server."""
    return f"postgresql+psycopg://{USER}:{password(settings)}@127.0.0.1:{settings.postgres_port}/{database}"


def store_url(settings: Settings, prefix: str = "tuneline") -> str:
    """TUNELINE_STORE_URL for the embedded server: database <prefix>_<service> for each service."""
    return url(settings, f"{prefix}_{{service}}")


def create_service_databases(settings: Settings, prefix: str = "tuneline") -> list[str]:
    """Create each service's database <prefix>_<service> that is missing; returns those made now."""
    return [f"{prefix}_{s}" for s in SERVICES if create_database(settings, f"{prefix}_{s}")]


def _conninfo(settings: Settings, database: str = "postgres") -> str:
    return f"host=127.0.0.1 port={settings.postgres_port} user={USER} password={password(settings)} dbname={database} connect_timeout=2"


def answering(settings: Settings) -> bool:
    """Whether the embedded server accepts this state folder's credentials now."""
    try:
        with psycopg.connect(_conninfo(settings)):
            return True
    except (psycopg.OperationalError, ConfigError):
        return False


def _pg_ctl(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_as_server_user([binary("pg_ctl"), "-D", str(_data(settings)), *args]),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def running(settings: Settings) -> bool:
    """Whether this state folder's server process runs (pg_ctl status)."""
    return (_data(settings) / "PG_VERSION").exists() and _pg_ctl(settings, "status").returncode == 0


def _initdb(settings: Settings) -> None:
    home = _home(settings)
    home.mkdir(parents=True, exist_ok=True)
    secret = home / "password"
    if not secret.exists():
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    data = _data(settings)
    shutil.rmtree(data, ignore_errors=True)  # a half-made cluster from an interrupted first start
    data.mkdir(mode=0o700)
    (home / "run").mkdir(exist_ok=True)
    _log(settings).touch()
    pwfile = home / ".initdb-password"
    pwfile.write_text(password(settings))
    try:
        _give_to_server_user(data, home / "run", _log(settings), pwfile)
        done = subprocess.run(_as_server_user([binary("initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
                                               f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C"]),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise TransientError(f"initdb failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")


def start(settings: Settings, timeout_s: float = 60.0) -> PostgresStatus:
    """Start the embedded server unless it runs; wait until it answers; create the services' databases."""
    if not (_data(settings) / "PG_VERSION").exists():
        _initdb(settings)
    if not running(settings):
        if _port_taken(settings):
            raise ConfigError(f"something else already listens on 127.0.0.1:{settings.postgres_port}",
                              hint="stop it, or set TUNELINE_POSTGRES_PORT to a free port")
        options = f"-c listen_addresses=127.0.0.1 -p {settings.postgres_port} -k {_home(settings) / 'run'}"
        done = _pg_ctl(settings, "-l", str(_log(settings)), "-o", options, "-w", "-t", str(int(timeout_s)), "start")
        if done.returncode != 0:
            raise TransientError(f"PostgreSQL did not start: {done.stdout[-500:]}{done.stderr[-500:]}; see {_log(settings)}")
    deadline = time.monotonic() + timeout_s
    while not answering(settings):
        if time.monotonic() > deadline:
            raise TransientError(f"PostgreSQL did not answer within {timeout_s:.0f}s; see {_log(settings)}")
        time.sleep(0.2)
    create_service_databases(settings)
    return status(settings)


def _port_taken(settings: Settings) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", settings.postgres_port)) == 0


def create_database(settings: Settings, name: str) -> bool:
    """Create a database on the embedded server unless it exists; returns whether it was made now."""
    with psycopg.connect(_conninfo(settings), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(settings: Settings, name: str) -> None:
    """Drop a database of the embedded server (its connections closed first)."""
    with psycopg.connect(_conninfo(settings), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def stop(settings: Settings) -> bool:
    """Stop the embedded server (fast shutdown: open transactions roll back); returns whether one ran."""
    if not running(settings):
        return False
    done = _pg_ctl(settings, "-m", "fast", "-w", "stop")
    if done.returncode != 0:
        raise TransientError(f"PostgreSQL did not stop: {done.stderr[-500:]}; see {_log(settings)}")
    return True


def status(settings: Settings) -> PostgresStatus:
    """Where the embedded server is and whether it answers."""
    return PostgresStatus(running=running(settings), answering=answering(settings),
                          address=f"127.0.0.1:{settings.postgres_port}", data_dir=_data(settings), log_file=_log(settings))
