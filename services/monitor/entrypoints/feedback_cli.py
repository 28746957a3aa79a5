"""`tuneline feedback`: ground truth for predictions (feedback.recorded), one at a time or from a CSV file.

What any upstream system can publish too: the request id a prediction answered (PredictResponse.request_id),
the true label, and where the truth came from. The monitor joins it to the prediction and keeps live
accuracy windows per adapter (services.monitor.feedback).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import typer
from rich.console import Console
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import ConfigError
from services.kernel.events import Outgoing
from services.kernel.ids import uuid7

SOURCES = ("human_review", "delayed_label", "downstream_outcome")
MAX_ROWS = 1_000_000   # per file: larger feeds belong on the topic itself, from the upstream system
BATCH = 5000
console = Console()


def feedback_event(request_id: str, label: str, goal: str, source: str, by: str, note: str = "") -> ev.FeedbackRecorded:
    """One feedback.recorded, validated: a request id, a label, a known source."""
    if not request_id.strip() or not label.strip():
        raise ConfigError("feedback needs a request id and a label", hint="tuneline feedback REQUEST_ID LABEL")
    if source not in SOURCES:
        raise ConfigError(f"unknown feedback source {source!r}", hint=f"one of {', '.join(SOURCES)}")
    return ev.FeedbackRecorded(feedback_id=uuid7(), request_id=request_id.strip(), goal_name=goal, label=label.strip(),
                               source=source, recorded_by=by, note=note, observed_at_unix_ms=time.time_ns() // 1_000_000)


def _from_file(path: Path, goal: str, source: str, by: str) -> list[ev.FeedbackRecorded]:
    if not path.is_file():
        raise ConfigError(f"{path} is not a file", hint="a CSV with a header row: request_id,label")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"request_id", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{path}: no {', '.join(sorted(missing))} column", hint="a CSV with a header row: request_id,label")
        events: list[ev.FeedbackRecorded] = []
        for line, row in enumerate(reader, start=2):
            if len(events) >= MAX_ROWS:
                raise ConfigError(f"{path}: more than {MAX_ROWS} rows", hint="split the file, or publish from your pipeline")
            try:
                events.append(feedback_event(row["request_id"] or "", row["label"] or "", goal, row.get("source") or source, by))
            except ConfigError as err:
                raise ConfigError(f"{path}, line {line}: {err}", hint=err.hint) from None
    return events


def feedback(request_id: str = typer.Argument("", help="the prediction's request id (or use --file)"),
             label: str = typer.Argument("", help="the true label"),
             goal: str = typer.Option("", help="the goal the prediction belongs to (checked when joined)"),
             source: str = typer.Option("human_review", help=" | ".join(SOURCES)),
             by: str = typer.Option("cli", help="who or what knows the truth (goes into the ledger)"),
             note: str = typer.Option("", help="a note, e.g. the review ticket"),
             file: Path | None = typer.Option(None, "--file", help="a CSV of request_id,label[,source] rows")) -> None:
    """Record ground truth for predictions: the monitor joins it to them and watches live accuracy (rollback.accuracy_drop)."""
    from services.kernel.outbox import publish_now
    from services.kernel.settings import Settings

    if file is not None and (request_id or label):
        raise ConfigError("give either REQUEST_ID LABEL or --file, not both", hint="tuneline feedback --file labels.csv")
    events = _from_file(file, goal, source, by) if file is not None else [feedback_event(request_id, label, goal, source, by, note)]
    settings = Settings()
    for start in range(0, len(events), BATCH):
        publish_now(settings, [Outgoing(e, e.goal_name or e.request_id) for e in events[start:start + BATCH]],
                    source="tuneline-cli/feedback")
    console.print(f"recorded {len(events)} feedback event(s)" + (f" for goal {goal}" if goal else ""))
