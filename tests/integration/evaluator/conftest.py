"""Real adapters for the evaluator's integration tests, made once per session on a banking77 subset.

An adapter here is the real kernel format (LoRA files + head + labels.json) over the bundled
MiniLM. To keep it cheap on 2 shared cores, the LoRA weights stay at their initial value (B = 0, so
the encoder is the base model) and only the head is fitted, full batch, on precomputed embeddings:
"good" learns all six labels, "worse" never saw one of them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from services.kernel.settings import REPO_ROOT

if TYPE_CHECKING:
    from tuneline.events.v1 import events_pb2 as ev

BASE = "bundled:all-MiniLM-L6-v2"
LABELS = ["card_arrival", "top_up_failed", "exchange_rate", "lost_or_stolen_card", "cash_withdrawal_charge",
          "transfer_not_received_by_recipient"]


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: list[str]


@dataclass(frozen=True)
class Adapters:
    good: Path
    worse: Path
    train: Split
    eval: Split


def _rows(name: str, per_label: int) -> Split:
    taken: dict[str, int] = {}
    texts, labels = [], []
    with open(REPO_ROOT / "datasets" / "banking77" / name, newline="") as f:
        for row in csv.DictReader(f):
            if row["label"] in LABELS and taken.get(row["label"], 0) < per_label:
                taken[row["label"]] = taken.get(row["label"], 0) + 1
                texts.append(row["text"])
                labels.append(row["label"])
    return Split(texts, labels)


def _save_fitted(model, emb, train: Split, labels_for_training: list[str], out: Path) -> Path:
    import torch

    from services.kernel.modeling import AdapterMeta, save_adapter

    torch.manual_seed(17)
    model.head.reset_parameters()
    y = torch.tensor([LABELS.index(x) for x in labels_for_training])
    opt = torch.optim.Adam(model.head.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model.head(emb), y).backward()
        opt.step()
    save_adapter(model, LABELS, AdapterMeta("lora", BASE, 64), out)
    return out


@pytest.fixture(scope="session")
def adapters(tmp_path_factory) -> Adapters:
    """A good and a deliberately worse adapter, and the train/eval rows (6 banking77 labels)."""
    import torch

    from services.kernel.goal import ApproachSpec
    from services.kernel.modeling import build_classifier

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("adapters")
    train, evaluation = _rows("train.csv", 40), _rows("test.csv", 20)
    model, tok = build_classifier(BASE, LABELS, ApproachSpec(), seed=17)
    enc = tok(train.texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        emb = model.embed(enc["input_ids"], enc["attention_mask"])
    good = _save_fitted(model, emb, train, train.labels, root / "good")
    # "worse" never learned lost_or_stolen_card: its rows were labelled card_arrival (a sixth of the data).
    merged = ["card_arrival" if x == "lost_or_stolen_card" else x for x in train.labels]
    worse = _save_fitted(model, emb, train, merged, root / "worse")
    return Adapters(good, worse, train, evaluation)


class Flow:
    """Drives the evaluator's handlers and job on a real store and blob folder (no Kafka)."""

    def __init__(self, deps) -> None:
        self.deps, self.store, self.blobs = deps, deps.store, deps.blobs
        self.signatures: dict[str, ev.ArtifactRef] = {}  # adapter digest -> the trainer's artifact signature

    def incoming(self, message, event: str):
        from datetime import UTC, datetime

        from services.kernel.events import Incoming
        from services.kernel.ids import uuid7

        return Incoming(id=uuid7(), type=event, source="test", time=datetime.now(UTC), subject="banking77", message=message)

    def apply(self, goal) -> None:
        from tuneline.events.v1 import events_pb2 as ev

        from services.evaluator import handlers

        msg = ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())
        self.store.run(lambda s: handlers.on_goal_applied(self.incoming(msg, "goal.applied"), s))

    def promote(self, ref) -> None:
        from tuneline.events.v1 import events_pb2 as ev

        from services.evaluator import handlers

        msg = ev.DeploymentPromoted(goal_name="banking77", adapter=ref)
        self.store.run(lambda s: handlers.on_deployment_promoted(self.incoming(msg, "deployment.promoted"), s))

    def put_adapter(self, folder: Path):
        """Store an adapter and its artifact signature as the trainer does; run_finished names both."""
        from tests.support import signed_adapter

        tree, signature = signed_adapter(self.deps.settings, self.blobs, folder)
        self.signatures[tree.digest] = signature
        return tree

    def run_finished(self, adapter_ref, eval_split: Split, goal, slices: list[str] | None = None):
        from tuneline.events.v1 import events_pb2 as ev

        from services.evaluator.adapters.parquet import PARQUET, write_eval_data
        from services.evaluator.evaluation import EvalData
        from services.kernel.ids import uuid7

        data = EvalData(tuple(eval_split.texts), tuple(eval_split.labels), tuple(slices) if slices else None)
        eval_ref = self.blobs.put_bytes(write_eval_data(data, slice_field=goal.task.slice_field or "slice"), PARQUET)
        return ev.RunFinished(run_id=uuid7(), goal_name=goal.name, goal_version=goal.version, status="succeeded",
                              adapter=adapter_ref, adapter_signature=self.signatures.get(adapter_ref.digest),
                              eval_data=eval_ref, base_model=BASE, method="lora", labels=LABELS,
                              text_field="text", label_field="label", dataset_name="banking77",
                              dataset_version="sha256:" + "d" * 64)

    def evaluate(self, run):

        from services.evaluator import bootstrap, handlers

        self.store.run(lambda s: handlers.on_run_finished(self.incoming(run, "run.finished"), s))
        assert bootstrap.job_runner(self.deps).run_once()
        return [o for o in self.decisions() if o.run_id == run.run_id][0]

    def decisions(self) -> list[ev.EvalOutcome]:
        import sqlalchemy as sa
        from tuneline.events.v1 import events_pb2 as ev

        from services.kernel.store import outbox

        rows = self.store.run(lambda s: s.execute(sa.select(outbox.c.event_type, outbox.c.value)).all())
        types: dict[str, type[ev.EvalPassed] | type[ev.EvalFailed]] = {"eval.passed": ev.EvalPassed, "eval.failed": ev.EvalFailed}
        return [types[t].FromString(v).outcome for t, v in rows if t in types]


def subset_goal(**acceptance: dict[str, float]):
    """The banking77 goal with thresholds for the 6-label subset and a latency bound for a shared CPU."""
    from services.kernel.goal import Goal, load_goal

    data = load_goal(REPO_ROOT / "goals" / "banking77.yaml").model_dump(mode="json")
    # 2 cores shared by several engineers' jobs: batch-1 p95 measured 70-180 ms here, so the
    # latency bound is loose in tests; the benchmark reports the real number.
    data["acceptance"].update({"accuracy": {"min": 0.9}, "macro_f1": {"min": 0.9}, "ece": {"max": 0.1},
                               "robustness_drop": {"max": 0.1}, "latency_p95_ms": {"max": 5000}})
    data["acceptance"].update(acceptance)
    return Goal.model_validate(data)


@pytest.fixture
def flow(tmp_path, adapters) -> Flow:
    """A Flow with the real model loader, sized small (60 perturbed rows per kind, 30 timed requests)."""
    from services.evaluator import bootstrap
    from services.evaluator.settings import EvaluatorSettings

    settings = EvaluatorSettings(state_dir=tmp_path / "state", evaluator_robustness_rows=60, evaluator_latency_rows=30,
                                 evaluator_torch_threads=1)
    return Flow(bootstrap.deps(settings, bootstrap.open_store(settings)))


@pytest.fixture
def goal_for():
    """subset_goal(**acceptance) as a fixture (test modules cannot import conftest)."""
    return subset_goal
