"""Which ids an event can be found by (request, adapter, run, eval, deployment, dataset version)."""

from __future__ import annotations

from google.protobuf.message import Message


def _outcome_keys(outcome: Message) -> list[tuple[str, str]]:
    return [("eval", outcome.eval_id), ("run", outcome.run_id), ("adapter", outcome.adapter.digest),
            ("dataset", outcome.dataset_version)]


_KEYS = {
    "dataset.published": lambda m: [],
    "dataset.registered": lambda m: [("dataset", m.dataset_version), ("published", m.published_event_id)],
    "run.started": lambda m: [("run", m.run_id)],
    "run.finished": lambda m: [("run", m.run_id), ("adapter", m.adapter.digest), ("dataset", m.dataset_version)],
    "eval.passed": lambda m: _outcome_keys(m.outcome),
    "eval.failed": lambda m: _outcome_keys(m.outcome),
    "deployment.started": lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter.digest)],
    "deployment.promoted": lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter.digest)],
    "deployment.rolled_back": lambda m: [("deployment", m.deployment_id), ("adapter", m.adapter_digest)],
    "inference.logged": lambda m: [("request", m.request_id)],
    "drift.detected": lambda m: [("adapter", m.adapter_digest)],
    "rollback.requested": lambda m: [("adapter", m.adapter_digest)],
}


def keys_of(event: str, event_id: str, message: Message) -> list[tuple[str, str]]:
    """(kind, "kind:id") pairs an event is indexed under; every event also under its own ce_id."""
    pairs = [("event", event_id)] if event == "dataset.published" else []
    pairs += _KEYS.get(event, lambda m: [])(message)
    seen, out = set(), []
    for kind, value in pairs:
        key = f"{kind}:{value}"
        if value and key not in seen:
            seen.add(key)
            out.append((kind, key))
    return out
