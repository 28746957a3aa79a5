"""CI data check: every shipped goal applies, and every shipped dataset passes the ingest gates.

It runs the services' own code, not copies of it:
- each `goals/*.yaml` is read as `tuneline goal apply` reads it (services.kernel.goal.load_goal), travels
  as the goal.applied event that command publishes (through the event codec), and is applied by the
  ingest service's goal.applied handler: the kernel's goal contract, which every service applies first;
- then the goal's dataset, `datasets/<goal.data.dataset>/train.csv`, is published to a real ingest: the
  ingest service's dataset.published handler queues the job and the service's job runner executes it
  (store and artifacts in a temporary state folder, no Kafka), so the goal decides the split, the PII
  policy and the examples needed per label, as in production. Ingest's answer in its outbox must be
  dataset.registered;
- a dataset no goal trains on is published the same way (`datasets/<name>/train.csv` as `<name>`) under
  the service's default policy;
- the held-out splits beside it (`test.csv`, `validation.csv`) are never published as datasets (the demo
  and the benchmarks read them as evaluation text and traffic; published with their train file as the
  eval split, the leakage gate would rightly refuse the official splits' near duplicates), so they pass
  the ingest's row gates only: schema (every row has a text and a label within the limits) and PII.
Gate limits come from IngestSettings, so TUNELINE_* settings apply here as they do in the service.

Usage: python scripts/ci/check_shipped_data.py [--goals DIR] [--datasets DIR]   (exit status 1 on any problem)
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import sqlalchemy as sa
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.ingest import bootstrap, handlers
from services.ingest.adapters.parquet_files import Staging
from services.ingest.domain.certificate import Tally
from services.ingest.domain.uri import check_uri
from services.ingest.job import policy_of
from services.ingest.plan import Plan
from services.ingest.scan import pii_verdict, scan
from services.ingest.settings import IngestSettings
from services.kernel.errors import ConfigError, TunelineError
from services.kernel.events import Incoming, Outgoing, decode, encode
from services.kernel.goal import Goal, load_goal
from services.kernel.settings import REPO_ROOT
from services.kernel.store import outbox

M = TypeVar("M", bound=Message)
Report = Callable[[str], None]
TRAIN = "train.csv"


@dataclass(frozen=True)
class Verdict:
    """What ingest answered."""

    passed: bool
    summary: str


class Ingest:
    """A real ingest service without Kafka: its store and artifacts in a fresh state folder."""

    def __init__(self, state: Path, data_root: Path) -> None:
        # store_url and artifact_root are pinned: a deployment's settings never point the check elsewhere.
        self.settings = IngestSettings(state_dir=state, store_url="", artifact_root="", allowed_data_roots=[data_root])
        self.store = bootstrap.open_store(self.settings)
        self.runner = bootstrap.job_runner(bootstrap.deps(self.settings, self.store))

    def apply_goal(self, goal: Goal) -> None:
        """Apply a goal as `tuneline goal apply` publishes it and the ingest service consumes it."""
        message = ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json(), applied_by="ci")
        incoming = _through_the_codec(Outgoing(message, goal.name), "goal.applied", ev.GoalApplied)
        with self.store.session() as s:
            handlers.on_goal_applied(incoming, s)

    def publish(self, name: str, path: Path) -> Verdict:
        """Publish one file as dataset `name`, run the ingest job it queues, and read ingest's answer."""
        message = ev.DatasetPublished(dataset_name=name, uri=str(path.resolve()), publisher="ci")
        incoming = _through_the_codec(Outgoing(message, name), "dataset.published", ev.DatasetPublished)
        with self.store.session() as s:
            handlers.on_dataset_published(incoming, s)
        if not self.runner.run_once():
            return Verdict(False, "no ingest job was queued")
        with self.store.session() as s:
            row = s.execute(sa.select(outbox.c.value, outbox.c.headers).order_by(outbox.c.seq.desc()).limit(1)).first()
        if row is None:
            return Verdict(False, "ingest answered nothing")
        answer = decode(row.value, [(k, base64.b64decode(v)) for k, v in row.headers]).message
        if isinstance(answer, ev.DatasetRegistered):
            return Verdict(True, f"registered: {answer.train_rows} train + {answer.eval_rows} eval rows, {len(answer.labels)} labels")
        if isinstance(answer, ev.DatasetRejected):
            return Verdict(False, f"rejected: {answer.summary}")
        return Verdict(False, f"unexpected answer {type(answer).__name__}")

    def row_gates(self, path: Path, work: Path) -> Verdict:
        """The ingest's row gates (schema, PII) over one file, as its job runs them."""
        s = self.settings
        location = check_uri(str(path.resolve()), s.data_roots(), s.allowed_url_schemes, s.denied_data_roots())
        policy = policy_of(s)
        staging, pii = Staging(work), Tally(policy.max_examples)
        try:
            gates = [scan(location, Plan(path.parent.name, location), policy, staging, pii, lambda _f, _m: None)]
        finally:
            staging.close()
        gates.append(pii_verdict(pii, s.pii_action))
        bad = [g for g in gates if not g.passed]
        return Verdict(not bad, "; ".join(f"{g.gate}: {g.reason}" for g in (bad or gates)))

    def close(self) -> None:
        """Release the store."""
        self.store.dispose()


def _through_the_codec(out: Outgoing, event: str, kind: type[M]) -> Incoming[M]:
    """The event as a consumer receives it: encoded to a Kafka record and decoded again."""
    record = encode(out, topic=f"tuneline.{event}", source="ci/data-check")
    incoming = decode(record.value, record.headers, topic=record.topic, expect=event)
    assert isinstance(incoming.message, kind)
    return cast(Incoming[M], incoming)


@contextmanager
def _ingest(data_root: Path) -> Iterator[tuple[Ingest, Path]]:
    with tempfile.TemporaryDirectory(prefix="tuneline-data-check-") as tmp:
        ingest = Ingest(Path(tmp) / "state", data_root)
        try:
            yield ingest, Path(tmp) / "work"
        finally:
            ingest.close()


def check(goals_dir: Path, datasets_dir: Path, report: Report = print) -> list[str]:
    """Check every goal with its dataset, every other dataset, and the held-out splits; returns the problems."""
    problems: list[str] = []

    def note(what: str, started: float, verdict: Verdict) -> None:
        report(f"{'ok  ' if verdict.passed else 'FAIL'} {what}: {verdict.summary} ({time.monotonic() - started:.1f} s)")
        if not verdict.passed:
            problems.append(f"{what}: {verdict.summary}")

    trained: set[str] = set()
    for path in sorted(goals_dir.glob("*.yaml")):
        started = time.monotonic()
        try:
            goal = load_goal(path)
        except ConfigError as err:
            problems.append(f"{path.name} does not apply: {err}")
            continue
        train = datasets_dir / goal.data.dataset / TRAIN
        if not train.is_file():
            problems.append(f"{path.name} trains on {goal.data.dataset!r}, which is not shipped ({train} is missing)")
            continue
        trained.add(goal.data.dataset)
        with _ingest(datasets_dir) as (ingest, _):
            try:
                ingest.apply_goal(goal)
            except TunelineError as err:
                problems.append(f"{path.name}: goal.applied refused: {err}")
                continue
            note(f"{path.name} + {goal.data.dataset}/{TRAIN}", started, ingest.publish(goal.data.dataset, train))
    for folder in sorted(p for p in datasets_dir.iterdir() if p.is_dir()):
        if not (folder / TRAIN).is_file():
            problems.append(f"datasets/{folder.name} has no {TRAIN}")
        elif folder.name not in trained:
            started = time.monotonic()
            with _ingest(datasets_dir) as (ingest, _):
                note(f"{folder.name}/{TRAIN} (default policy)", started, ingest.publish(folder.name, folder / TRAIN))
        for held_out in sorted(p for p in folder.glob("*.csv") if p.name != TRAIN):
            started = time.monotonic()
            with _ingest(datasets_dir) as (ingest, work):
                note(f"{folder.name}/{held_out.name} (row gates)", started, ingest.row_gates(held_out, work))
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the check; exit status 1 when any goal or dataset fails."""
    parser = argparse.ArgumentParser(description="Shipped goals apply and shipped datasets pass the ingest gates.")
    parser.add_argument("--goals", type=Path, default=REPO_ROOT / "goals")
    parser.add_argument("--datasets", type=Path, default=REPO_ROOT / "datasets")
    args = parser.parse_args(argv)
    problems = check(args.goals, args.datasets)
    for problem in problems:
        print(f"data check: {problem}", file=sys.stderr)
    print(f"data check: {len(problems)} problem(s)" if problems else "data check: every goal applies and every dataset passes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
