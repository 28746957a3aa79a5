"""The trainer's handlers: remember goals and datasets, and queue a training job when they meet.

Each handler runs in one transaction with its inbox row; the job row it queues is in the same
transaction, so a redelivered event queues nothing twice. Training itself runs in the job.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import InvalidInput, NotFound
from services.kernel.events import Incoming, Outgoing
from services.kernel.goal import Goal
from services.kernel.goals import all_goals, apply_goal, latest_goal
from services.kernel.ids import uuid7
from services.kernel.jobs import enqueue_job
from services.kernel.store import utcnow
from services.trainer import store
from services.trainer.domain.runs import (
    QUEUED,
    RegisteredDataset,
    Snapshot,
    TrainRequest,
    dataset_from_json,
    matches,
    retrain_wanted,
    run_key,
)

TRAIN_JOB = "train"


def on_goal_applied(incoming: Incoming[ev.GoalApplied], session: Session) -> Iterable[Outgoing]:
    """Remember the goal; start a run if its dataset is already registered."""
    goal = apply_goal(incoming, session)
    found = store.dataset_json(session, goal.data.dataset)
    if found:
        start_run(session, goal, dataset_from_json(found), "goal.applied", incoming.id, incoming.traceparent)
    return []


def on_dataset_registered(incoming: Incoming[ev.DatasetRegistered], session: Session) -> Iterable[Outgoing]:
    """Remember the dataset; start a run for every goal that trains on it."""
    dataset = registered_dataset(incoming.message)
    store.remember_dataset(session, dataset.name, dataset.version, dataset.to_json(), utcnow())
    for goal in all_goals(session):
        if matches(goal, dataset):
            start_run(session, goal, dataset, "dataset.registered", incoming.id, incoming.traceparent)
    return []


def on_run_requested(incoming: Incoming[ev.RunRequested], session: Session) -> Iterable[Outgoing]:
    """Start a run someone asked for (the goal's dataset unless another is named)."""
    msg = incoming.message
    goal = _known_goal(session, msg.goal_name)
    dataset = _known_dataset(session, msg.dataset_name or goal.data.dataset, msg.dataset_version)
    start_run(session, goal, dataset, "run.requested", incoming.id, incoming.traceparent, msg.reason, msg.incident_id)
    return []


def on_rollback_requested(incoming: Incoming[ev.RollbackRequested], session: Session) -> Iterable[Outgoing]:
    """Retrain after a rollback when the event asks and the goal's policy.retrain_on_rollback allows."""
    msg = incoming.message
    goal = latest_goal(session, msg.goal_name)
    if goal is None or not retrain_wanted(goal, msg.retrain):
        return []
    dataset = _known_dataset(session, goal.data.dataset, "")
    start_run(session, goal, dataset, "rollback.requested", incoming.id, incoming.traceparent,
              f"retrain after rollback: {msg.reason}", msg.incident_id)
    return []


def start_run(session: Session, goal: Goal, dataset: RegisteredDataset, trigger: str, event_id: str,
              traceparent: str = "", reason: str = "", incident_id: str = "") -> str:
    """Queue a training job and its run row (once per run key); returns the run id."""
    run_id = uuid7()
    request = TrainRequest(run_id, goal.canonical_json(), dataset, trigger, reason, incident_id)
    job_id = enqueue_job(session, TRAIN_JOB, run_key(goal, dataset, trigger, event_id), request.to_json(), traceparent)
    existing = store.run_of_job(session, job_id)
    if existing is not None:
        return existing.id
    session.add(store.RunRow(id=run_id, job_id=job_id, goal_name=goal.name, goal_version=goal.version,
                             dataset_name=dataset.name, dataset_version=dataset.version, trigger=trigger,
                             status=QUEUED, reason=reason, created_at=utcnow()))
    return run_id


def registered_dataset(msg: ev.DatasetRegistered) -> RegisteredDataset:
    """The typed dataset from a dataset.registered event."""
    if not msg.train.digest or not msg.eval.digest:
        raise InvalidInput(f"dataset.registered for {msg.dataset_name!r} lacks train/eval snapshot digests")
    return RegisteredDataset(
        name=msg.dataset_name, version=msg.dataset_version, train=_snapshot(msg.train), eval=_snapshot(msg.eval),
        labels=list(msg.labels), text_field=msg.text_field or "text", label_field=msg.label_field or "label",
        slice_field=msg.slice_field)


def _snapshot(ref: ev.ArtifactRef) -> Snapshot:
    return Snapshot(ref.digest, ref.uri, ref.media_type or "application/vnd.apache.parquet", ref.size_bytes)


def _known_goal(session: Session, name: str) -> Goal:
    goal = latest_goal(session, name)
    if goal is None:
        raise NotFound(f"no goal named {name!r} was applied", hint="tuneline goal apply FILE first")
    return goal


def _known_dataset(session: Session, name: str, version: str) -> RegisteredDataset:
    text = store.dataset_json(session, name, version)
    if text is None:
        raise NotFound(f"dataset {name!r} {version or '(latest)'} was never registered")
    return dataset_from_json(text)
