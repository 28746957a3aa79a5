"""Ingest commands: `tuneline ingest run`, `tuneline dataset publish`."""

from __future__ import annotations

import os

import typer
from rich.console import Console
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import ConfigError
from services.kernel.events import Outgoing

console = Console()


def run() -> None:
    """Run the ingest service in the foreground (consumes dataset.published and goal.applied)."""
    from services.ingest.bootstrap import build_runtime

    build_runtime().run()


def _lineage(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--lineage {item!r} is not KEY=VALUE", hint="e.g. --lineage job=etl-42")
        pairs[key] = value
    return pairs


def _uri(path: str) -> str:
    # Local paths travel absolute (the service resolves symlinks and checks the roots itself).
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def publish(
    path: str = typer.Argument(..., help="Local path or fsspec URL of a CSV, JSONL or Parquet file."),
    name: str = typer.Option(..., "--name", help="Dataset name (a goal's data.dataset)."),
    fmt: str = typer.Option("", "--format", help="csv | jsonl | parquet (default: from the extension)."),
    text_field: str = typer.Option("", "--text-field"),
    label_field: str = typer.Option("", "--label-field"),
    slice_field: str = typer.Option("", "--slice-field"),
    eval_path: str = typer.Option("", "--eval", help="An explicit eval split (else split by the goal)."),
    publisher: str = typer.Option("", "--publisher", help="Team or pipeline publishing it."),
    lineage: list[str] = typer.Option([], "--lineage", help="Upstream lineage KEY=VALUE (repeatable)."),
) -> None:
    """Publish a dataset.published event, as any upstream Kafka producer could."""
    from services.ingest.settings import IngestSettings
    from services.kernel.outbox import publish_now

    msg = ev.DatasetPublished(
        dataset_name=name, uri=_uri(path), format=fmt, text_field=text_field, label_field=label_field,
        slice_field=slice_field, publisher=publisher or "cli",
        lineage=_lineage(lineage), eval_uri=_uri(eval_path) if eval_path else "",
    )
    [event_id] = publish_now(IngestSettings(), [Outgoing(msg, name)], source="tuneline-cli/dataset-publish")
    console.print(f"published dataset.published for [bold]{name}[/] ({msg.uri}) as event {event_id}")


def register(app: typer.Typer) -> None:
    """Add the ingest and dataset command groups."""
    ingest = typer.Typer(help="The ingest service: datasets in, certified and versioned, or rejected.", no_args_is_help=True)
    ingest.command("run")(run)
    dataset = typer.Typer(help="Datasets: publish them for ingest.", no_args_is_help=True)
    dataset.command("publish")(publish)
    app.add_typer(ingest, name="ingest")
    app.add_typer(dataset, name="dataset")
