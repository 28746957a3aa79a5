"""What starts a run and what a run is: typed values the handlers, store and job share (no I/O)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from services.kernel.goal import Goal

AUTO_TRIGGERS = ("goal.applied", "dataset.registered")
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


@dataclass(frozen=True)
class Snapshot:
    """One artifact of a registered dataset (a deterministic Parquet snapshot)."""

    digest: str
    uri: str
    media_type: str = "application/vnd.apache.parquet"
    size_bytes: int = 0


@dataclass(frozen=True)
class RegisteredDataset:
    """A dataset version as ingest registered it: snapshots, labels, column names."""

    name: str
    version: str
    train: Snapshot
    eval: Snapshot
    labels: list[str]
    text_field: str = "text"
    label_field: str = "label"
    slice_field: str = ""

    def to_json(self) -> str:
        """The dataset as JSON (stored, and carried in job payloads)."""
        return json.dumps(asdict(self), sort_keys=True)


def dataset_from_json(text: str) -> RegisteredDataset:
    """Rebuild a registered dataset from its JSON."""
    data = json.loads(text)
    data["train"], data["eval"] = Snapshot(**data["train"]), Snapshot(**data["eval"])
    return RegisteredDataset(**data)


@dataclass(frozen=True)
class TrainRequest:
    """The payload of one training job: which goal on which data, and why."""

    run_id: str
    goal_json: str
    dataset: RegisteredDataset
    trigger: str                  # goal.applied | dataset.registered | run.requested | rollback.requested | reproduce
    reason: str = ""
    incident_id: str = ""

    def to_json(self) -> str:
        """The request as JSON (the job payload)."""
        data = asdict(self)
        return json.dumps(data, sort_keys=True)


def request_from_json(text: str) -> TrainRequest:
    """Rebuild a request from a job payload."""
    data = json.loads(text)
    data["dataset"] = dataset_from_json(json.dumps(data["dataset"]))
    return TrainRequest(**data)


def matches(goal: Goal, dataset: RegisteredDataset) -> bool:
    """Whether a registered dataset is the one a goal trains on."""
    return goal.data.dataset == dataset.name


def run_key(goal: Goal, dataset: RegisteredDataset, trigger: str, event_id: str) -> str:
    """The job key that makes a run start once: automatic runs once per (goal version, dataset version).

    Re-applying the same goal or a redelivered dataset.registered starts nothing new; an explicit
    request (run.requested, a rollback's retrain) is its own run, keyed by the event that asked.
    """
    if trigger in AUTO_TRIGGERS:
        return f"auto|{goal.version}|{dataset.version}"
    return f"{trigger}|{event_id}"


def retrain_wanted(goal: Goal, retrain_flag: bool) -> bool:
    """A rollback asks for a new run only when the event asks and the goal's policy allows it."""
    return retrain_flag and goal.policy.retrain_on_rollback
