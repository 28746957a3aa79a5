"""Schema migrations: alembic revisions, run from `Store.open` on the store's own connection.

The kernel's revisions (branch `kernel`: inbox, outbox, jobs, goals) live in `versions/` here; a
service's live in `services/<service>/migrations/` (a branch labelled with the service's name, whose
first revision depends on the kernel's first). A store runs the kernel's branch and its service's,
all in one transaction, and records the heads in its `alembic_version` table. docs/migrations.md
says how to add a revision.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationInfo
from alembic.script import Script, ScriptDirectory

from services.kernel.errors import ConfigError

HERE = Path(__file__).parent
KERNEL_VERSIONS = HERE / "versions"
# Before alembic, a hand-written runner recorded what it applied here, one initial migration per
# branch; each branch's first revision names that migration in `legacy_name`.
LEGACY_TABLE = "tuneline_migrations"
KERNEL_BASE = "kernel_0001"


def config(connection: sa.Connection, service_versions: Path | None = None) -> Config:
    """The alembic config of one store: the kernel's revisions, and one service's if given."""
    cfg = Config()
    cfg.set_main_option("script_location", _ini(HERE))
    cfg.set_main_option("path_separator", "os")
    folders = [KERNEL_VERSIONS, *([service_versions] if service_versions else [])]
    cfg.set_main_option("version_locations", os.pathsep.join(_ini(f) for f in folders))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: sa.Connection, service_versions: Path | None = None) -> list[str]:
    """Bring a store's schema to the newest revisions; returns the revisions applied now, in order."""
    cfg = config(connection, service_versions)
    if _is_legacy(connection):
        _adopt_legacy(cfg, connection)
    applied: list[str] = []

    def record(*, step: MigrationInfo, **_: object) -> None:
        applied.extend([] if step.is_stamp else step.up_revision_ids)

    cfg.attributes["on_version_apply"] = [record]
    command.upgrade(cfg, "heads")
    return applied


def _ini(path: Path) -> str:
    # Config values go through ConfigParser interpolation, where a literal % is written %%.
    return str(path).replace("%", "%%")


def _is_legacy(connection: sa.Connection) -> bool:
    tables = set(sa.inspect(connection).get_table_names())
    return LEGACY_TABLE in tables and "alembic_version" not in tables


def _adopt_legacy(cfg: Config, connection: sa.Connection) -> None:
    """A store made before alembic holds each branch's first revision: stamp those, drop the old log."""
    recorded = set(connection.execute(sa.text(f"SELECT name FROM {LEGACY_TABLE}")).scalars())
    bases = {getattr(s.module, "legacy_name", None): s.revision for s in _bases(cfg)}
    unknown = recorded - bases.keys()
    if unknown:
        raise ConfigError(f"the store's {LEGACY_TABLE} names migrations no revision accounts for: {sorted(unknown)}",
                          hint="open it with the Tuneline version that made it, or start from an empty store")
    # One at a time, the kernel's first: a service's first revision depends on it, and alembic
    # refuses to stamp a revision together with one it depends on.
    for name in sorted(recorded, key=lambda n: bases[n] != KERNEL_BASE):
        command.stamp(cfg, bases[name])
    connection.execute(sa.text(f"DROP TABLE {LEGACY_TABLE}"))


def _bases(cfg: Config) -> list[Script]:
    script = ScriptDirectory.from_config(cfg)
    return [script.get_revision(rev) for rev in script.get_bases()]
