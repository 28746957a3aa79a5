"""Which ids an event can be found by (request, adapter, run, eval, deployment, dataset version)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

M = TypeVar("M", bound=Message)
Keys = list[tuple[str, str]]
KeysOf = Callable[[Message], Keys]


def _of(_cls: type[M], keys: Callable[[M], Keys]) -> KeysOf:
    """`keys` typed for the one message class an event name carries (the codec guarantees which)."""
    return cast(KeysOf, keys)


def _none(_m: Message) -> Keys:
    return []


def _outcome_keys(outcome: ev.EvalOutcome) -> list[tuple[str, str]]:
    return [("eval", outcome.eval_id), ("run", outcome.run_id), ("adapter", outcome.adapter.digest),
            ("dataset", outcome.dataset_version)]


_KEYS: dict[str, KeysOf] = {
    "dataset.published": _of(ev.DatasetPublished, lambda m: []),
    "dataset.registered": _of(ev.DatasetRegistered, lambda m: [("dataset", m.dataset_version), ("published", m.published_event_id)]),
    "run.started": _of(ev.RunStarted, lambda m: [("run", m.run_id)]),
    "run.finished": _of(ev.RunFinished, lambda m: [("run", m.run_id), ("adapter", m.adapter.digest), ("dataset", m.dataset_version)]),
    "eval.passed": _of(ev.EvalPassed, lambda m: _outcome_keys(m.outcome)),
    "eval.failed": _of(ev.EvalFailed, lambda m: _outcome_keys(m.outcome)),
    "deployment.started": _of(ev.DeploymentStarted, lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter.digest)]),
    "deployment.promoted": _of(ev.DeploymentPromoted, lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter.digest)]),
    "deployment.rolled_back": _of(ev.DeploymentRolledBack, lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter_digest)]),
    "feedback.recorded": _of(ev.FeedbackRecorded, lambda m: [("request", m.request_id)]),
    "deployment.approved": _of(ev.DeploymentApproved, lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter.digest)]),
    "deployment.rejected": _of(ev.DeploymentRejected, lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter.digest)]),
    "deployment.held": _of(ev.DeploymentHeld, lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter.digest)]),
    "deployment.resumed": _of(ev.DeploymentResumed, lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter.digest)]),
    "inference.logged": _of(ev.InferenceLogged, lambda m: [("request", m.request_id)]),
    "drift.detected": _of(ev.DriftDetected, lambda m: [("adapter", m.adapter_digest)]),
    "rollback.requested": _of(ev.RollbackRequested, lambda m: [("adapter", m.adapter_digest)]),
}


def keys_of(event: str, event_id: str, message: Message) -> list[tuple[str, str]]:
    """(kind, "kind:id") pairs an event is indexed under; every event also under its own ce_id."""
    pairs = [("event", event_id)] if event == "dataset.published" else []
    pairs += _KEYS.get(event, _none)(message)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for kind, value in pairs:
        key = f"{kind}:{value}"
        if value and key not in seen:
            seen.add(key)
            out.append((kind, key))
    return out
