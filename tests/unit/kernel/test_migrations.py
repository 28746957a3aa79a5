"""Schema migrations on SQLite: every store upgrades from empty, from a pre-alembic store, and again
without change; and the migrated schema is exactly the models' (a model change without a revision fails here)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import services.kernel.goals  # noqa: F401 - registers the goal tables on the kernel's metadata
from services.kernel import migrations
from services.kernel.errors import ConfigError
from services.kernel.goal import load_goal
from services.kernel.goals import goal_by_version, latest_goal
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import Store, inbox, metadata

SERVICES = ("ingest", "trainer", "evaluator", "deployer", "monitor")
GOAL = load_goal(REPO_ROOT / "goals" / "banking77.yaml")
APPLIED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _models(service: str | None) -> tuple[sa.MetaData, Path | None]:
    """The kernel's metadata plus a service's, and the folder of that service's revisions."""
    merged = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(merged)
    if service is None:
        return merged, None
    store = importlib.import_module(f"services.{service}.store")
    for table in store.Base.metadata.tables.values():
        table.to_metadata(merged)
    return merged, store.MIGRATIONS


def _differences(engine: sa.Engine, models: sa.MetaData) -> list[object]:
    def ours(obj: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
        return not (kind == "table" and name == "alembic_version")

    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"include_object": ours}), models))


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


@pytest.mark.parametrize("service", [*SERVICES, None])
def test_an_empty_store_migrates_to_exactly_the_models(tmp_path: Path, service: str | None) -> None:
    models, folder = _models(service)
    store = Store.open(Settings(state_dir=tmp_path), service or "bare", folder)
    assert _differences(store.engine, models) == []
    assert "tuneline_goals" in _tables(store.engine) and "tuneline_migrations" not in _tables(store.engine)


def test_a_model_change_without_a_revision_is_a_difference(tmp_path: Path) -> None:
    models, folder = _models("trainer")
    models.tables["trainer_runs"].append_column(sa.Column("tenant", sa.String(64), nullable=True))
    store = Store.open(Settings(state_dir=tmp_path), "trainer", folder)
    assert [d[0] for d in _differences(store.engine, models)] == ["add_column"]  # type: ignore[index]


@pytest.mark.parametrize("service", SERVICES)
def test_reopening_a_store_applies_nothing_and_keeps_its_rows(tmp_path: Path, service: str) -> None:
    _, folder = _models(service)
    settings = Settings(state_dir=tmp_path)
    first = Store.open(settings, service, folder)
    _insert_inbox_row(first.engine)
    first.dispose()
    again = Store.open(settings, service, folder)
    assert again.migrate(folder) == []
    assert _inbox_ids(again.engine) == ["e1"]


# The store as the pre-alembic runner left it: its schema (each branch's first revision, which
# creates what that runner's create_all did), its log of names, and each service's own goal table.
OLD_GOAL_ROWS: dict[str, tuple[str, dict[str, object]]] = {
    "ingest": ("ingest_goals", {"dataset_name": GOAL.data.dataset, "goal_name": GOAL.name, "goal_version": GOAL.version,
                                "goal_json": GOAL.canonical_json(), "applied_at": APPLIED}),
    "trainer": ("trainer_goals", {"name": GOAL.name, "version": GOAL.version, "goal_json": GOAL.canonical_json(),
                                  "applied_at": APPLIED}),
    "evaluator": ("evaluator_goals", {"version": GOAL.version, "name": GOAL.name, "goal_json": GOAL.canonical_json(),
                                      "applied_at": APPLIED}),
    "deployer": ("deployer_goals", {"name": GOAL.name, "version": GOAL.version, "goal_json": GOAL.canonical_json(),
                                    "applied_at": APPLIED}),
    "monitor": ("monitor_goals", {"name": GOAL.name, "version": "", "goal_json": GOAL.canonical_json()}),
}
LEGACY_NAMES = {"kernel": "kernel-0001-inbox-outbox-jobs", "ingest": "ingest-0001-goals-registrations",
                "trainer": "trainer-0001-goals-datasets-runs", "evaluator": "evaluator-0001-tables",
                "deployer": "deployer-0001-goals-rollouts-progress", "monitor": "monitor-0001-initial"}


def _old_style_store(settings: Settings, service: str, names: list[str]) -> sa.Engine:
    engine = Store(settings.store_url_for(service), service).engine
    with engine.begin() as conn:
        command.upgrade(migrations.config(conn, _models(service)[1]), f"{service}_0001")
        conn.exec_driver_sql("DROP TABLE alembic_version")
        log = sa.table("tuneline_migrations", sa.column("name"), sa.column("applied_at", sa.DateTime(timezone=True)))
        conn.exec_driver_sql("CREATE TABLE tuneline_migrations (name VARCHAR(200) PRIMARY KEY, applied_at DATETIME NOT NULL)")
        conn.execute(log.insert(), [{"name": n, "applied_at": APPLIED} for n in names])
        table, row = OLD_GOAL_ROWS[service]
        conn.execute(sa.table(table, *map(sa.column, row)).insert().values(**row))
    _insert_inbox_row(engine)
    return engine


@pytest.mark.parametrize("service", SERVICES)
def test_a_store_from_before_alembic_upgrades_and_keeps_its_rows_and_goals(tmp_path: Path, service: str) -> None:
    settings = Settings(state_dir=tmp_path)
    _old_style_store(settings, service, [LEGACY_NAMES["kernel"], LEGACY_NAMES[service]]).dispose()
    models, folder = _models(service)
    store = Store.open(settings, service, folder)
    assert _differences(store.engine, models) == []          # goal table moved to the kernel's, old log gone
    assert _inbox_ids(store.engine) == ["e1"]
    with store.session() as session:
        assert latest_goal(session, GOAL.name) == GOAL and goal_by_version(session, GOAL.version) == GOAL


def test_a_store_whose_old_log_names_an_unknown_migration_is_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    _old_style_store(settings, "trainer", [LEGACY_NAMES["kernel"], "trainer-0002-from-a-fork"]).dispose()
    with pytest.raises(ConfigError, match="trainer-0002-from-a-fork"):
        Store.open(settings, "trainer", _models("trainer")[1])


def test_a_failing_revision_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "broken_0001.py").write_text(
        'from alembic import op\nimport sqlalchemy as sa\n'
        'revision, down_revision, branch_labels, depends_on = "broken_0001", None, ("broken",), "kernel_0001"\n'
        'def upgrade():\n    op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    raise RuntimeError("revision bug")\n')
    with pytest.raises(RuntimeError, match="revision bug"):
        Store.open(Settings(state_dir=tmp_path), "broken", folder)
    assert _tables(Store(Settings(state_dir=tmp_path).store_url_for("broken"), "broken").engine) == set()


def _insert_inbox_row(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(inbox.insert().values(consumer="c", event_id="e1", event_type="goal.applied", topic="t", partition=0,
                                           offset=7, processed_at=APPLIED))


def _inbox_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(inbox.c.event_id)).scalars())
