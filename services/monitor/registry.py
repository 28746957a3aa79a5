"""The model registry: goals, datasets, runs, evaluations and models, read from the ledger.

Nothing here is stored apart from the events: every answer is a projection of the ledger's records
(in ledger order), so a stage tag (candidate, canary, champion, retired, refused) is whatever the
events made it and cannot be set by hand. `visible` limits each answer to the goals of the caller's
tenant; a dataset is visible to the tenants of the goals that train on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev
from tuneline.monitor.v1 import registry_pb2 as r

from services.kernel.events import EVENT_TYPES, ce_type
from services.kernel.goals import all_goals
from services.monitor.lineage import PEOPLES_DECISIONS, signer_of
from services.monitor.store import LedgerRow

STAGES = ("candidate", "canary", "champion", "retired", "refused")
_DEPLOYMENT = ("deployment.started", "deployment.promoted", "deployment.rolled_back", *PEOPLES_DECISIONS)
Visible = Callable[[str], bool]   # goal name -> may the caller see it


@dataclass(frozen=True)
class Record:
    """One ledger record of a registry event, decoded."""

    name: str
    message: Message
    time_ms: int
    event_id: str
    signer: str


# Where an event sits in an adapter's life, for events of the same millisecond.
_LIFECYCLE = {name: rank for rank, names in enumerate((
    ("goal.applied",), ("dataset.registered", "dataset.rejected"), ("run.started",), ("run.finished",), ("eval.passed", "eval.failed"),
    ("deployment.approved", "deployment.rejected"), ("deployment.started",), ("deployment.held",), ("deployment.resumed",),
    ("deployment.promoted",), ("deployment.rolled_back",))) for name in names}


def records(session: Session, names: Iterable[str]) -> list[Record]:
    """The ledger's records of these events in the order they happened: by event time, then by lifecycle.

    Not in ledger order: each event type has its own topic, and the monitor's consumers may receive a
    deployment.promoted before the deployment.started its deployer published first.
    """
    types = {ce_type(n): n for n in names}
    rows = session.execute(sa.select(LedgerRow).where(LedgerRow.ce_type.in_(list(types))).order_by(LedgerRow.seq)).scalars()
    found: list[tuple[int, int, int, Record]] = []
    for row in rows:
        name = types[row.ce_type]
        message = EVENT_TYPES[name]()
        message.ParseFromString(row.payload)
        found.append((row.event_ms or 0, _LIFECYCLE.get(name, 0), row.seq, Record(name, message, row.event_ms or 0, row.ce_id,
                                                                                  signer_of(row))))
    return [rec for *_, rec in sorted(found, key=lambda x: x[:3])]


def goals(session: Session, visible: Visible, name: str = "") -> list[r.GoalRecord]:
    """Goals and their versions (newest first), with the tenant and the version in force."""
    tenants = {g.name: g.tenant for g in all_goals(session)}
    found: dict[str, r.GoalRecord] = {}
    for rec in records(session, ("goal.applied",)):
        m = cast(ev.GoalApplied, rec.message)
        if (name and m.goal_name != name) or not visible(m.goal_name):
            continue
        goal = found.setdefault(m.goal_name, r.GoalRecord(name=m.goal_name, tenant=tenants.get(m.goal_name, "")))
        goal.versions.insert(0, r.GoalVersion(version=m.goal_version, applied_by=m.applied_by, applied_unix_ms=rec.time_ms,
                                              event_id=rec.event_id))
        goal.version_in_force = m.goal_version
    return [found[k] for k in sorted(found)]


def datasets(session: Session, visible: Visible, name: str = "") -> list[r.DatasetRecord]:
    """Registered dataset versions and rejected publications, newest first, with the goals that use them."""
    users: dict[str, list[str]] = {}
    for g in all_goals(session):
        users.setdefault(g.data.dataset, []).append(g.name)
    out: list[r.DatasetRecord] = []
    for rec in records(session, ("dataset.registered", "dataset.rejected")):
        dataset = getattr(rec.message, "dataset_name", "")
        goal_names = sorted(users.get(dataset, []))
        if (name and dataset != name) or not any(visible(g) for g in goal_names or [""]):
            continue
        if rec.name == "dataset.registered":
            m = cast(ev.DatasetRegistered, rec.message)
            item = r.DatasetRecord(name=m.dataset_name, version=m.dataset_version, status="registered", train_rows=m.train_rows,
                                   eval_rows=m.eval_rows, labels=m.labels, certificate=m.certificate,
                                   certificate_ref=m.certificate_ref, publisher=m.publisher, source_uri=m.source_uri,
                                   published_event_id=m.published_event_id)
        else:
            j = cast(ev.DatasetRejected, rec.message)
            item = r.DatasetRecord(name=j.dataset_name, status="rejected", certificate=j.certificate, publisher=j.publisher,
                                   source_uri=j.source_uri, summary=j.summary, published_event_id=j.published_event_id)
        item.time_unix_ms, item.goals[:] = rec.time_ms, goal_names
        out.insert(0, item)
    return out


def runs(session: Session, visible: Visible, goal: str = "", run_id: str = "") -> list[r.RunRecord]:
    """Runs, newest first: running until their run.finished, then its status, adapter, envelope and metrics."""
    found: dict[str, r.RunRecord] = {}
    for rec in records(session, ("run.started", "run.finished")):
        m = cast("ev.RunStarted | ev.RunFinished", rec.message)
        if (goal and m.goal_name != goal) or (run_id and not m.run_id.startswith(run_id)) or not visible(m.goal_name):
            continue
        run = found.setdefault(m.run_id, r.RunRecord(run_id=m.run_id, goal_name=m.goal_name, goal_version=m.goal_version,
                                                     dataset_name=m.dataset_name, dataset_version=m.dataset_version,
                                                     status="running", started_unix_ms=rec.time_ms))
        if isinstance(m, ev.RunFinished):
            run.status, run.failure_reason, run.method, run.wall_seconds = m.status, m.failure_reason, m.method, m.wall_seconds
            run.adapter.CopyFrom(m.adapter)
            run.envelope.CopyFrom(m.envelope)
            run.metrics.clear()
            run.metrics.update(m.metrics)
            run.attempts, run.finished_unix_ms = m.attempts, rec.time_ms
            run.started_unix_ms = run.started_unix_ms or rec.time_ms
    return sorted(found.values(), key=lambda x: (x.started_unix_ms, x.run_id), reverse=True)


def evals(session: Session, visible: Visible, goal: str = "", ident: str = "") -> list[r.EvalRecord]:
    """Gate decisions, newest first; `ident`: an eval id or run id, or a prefix of one."""
    out: list[r.EvalRecord] = []
    for rec in records(session, ("eval.passed", "eval.failed")):
        o = cast("ev.EvalPassed | ev.EvalFailed", rec.message).outcome
        if (goal and o.goal_name != goal) or not visible(o.goal_name):
            continue
        if ident and not (o.eval_id.startswith(ident) or o.run_id.startswith(ident)):
            continue
        out.insert(0, r.EvalRecord(outcome=o, time_unix_ms=rec.time_ms))
    return out


def models(session: Session, visible: Visible, goal: str = "", stage: str = "") -> list[r.ModelRecord]:
    """Every adapter that reached the gate, with the stage the events gave it and its history (oldest first).

    The stages follow the events in the order they happened (`records`):
    eval.failed: refused; eval.passed: candidate (also while it waits for approval); deployment.started:
    canary; deployment.promoted: champion, and the champion it replaced retired; deployment.rolled_back:
    retired, and the adapter it restored champion again; deployment.rejected: refused.
    """
    found: dict[tuple[str, str], r.ModelRecord] = {}
    champion: dict[str, str] = {}
    replaced: set[str] = set()   # champions a later promotion replaced

    def model(goal_name: str, digest: str) -> r.ModelRecord:
        return found.setdefault((goal_name, digest), r.ModelRecord(goal_name=goal_name, adapter_digest=digest, stage="candidate"))

    def note(m: r.ModelRecord, rec: Record, summary: str, by: str = "") -> None:
        m.history.append(r.ModelEvent(event=rec.name, time_unix_ms=rec.time_ms, summary=summary, by=by or rec.signer))

    for rec in records(session, ("eval.passed", "eval.failed", *_DEPLOYMENT)):
        if rec.name.startswith("eval."):
            o = cast("ev.EvalPassed | ev.EvalFailed", rec.message).outcome
            m = model(o.goal_name, o.adapter.digest)
            m.run_id, m.eval_id, m.dataset_version, m.goal_version, m.method = (o.run_id, o.eval_id, o.dataset_version,
                                                                                o.goal_version, o.method)
            m.metrics.clear()
            m.metrics.update(o.metrics)
            m.stage = "candidate" if o.passed else "refused"
            note(m, rec, o.summary)
            continue
        _deployment(rec, model, note, champion, replaced)
    out = [m for (g, _), m in found.items() if (not goal or g == goal) and visible(g) and (not stage or m.stage == stage)]
    order = {s: i for i, s in enumerate(("champion", "canary", "candidate", "retired", "refused"))}
    return sorted(out, key=lambda m: (m.goal_name, order[m.stage], -(m.history[-1].time_unix_ms if m.history else 0)))


def _deployment(rec: Record, model: Callable[[str, str], r.ModelRecord], note: Callable[..., None],
                champion: dict[str, str], replaced: set[str]) -> None:
    goal_name = cast(ev.DeploymentStarted, rec.message).goal_name
    if rec.name == "deployment.rolled_back":
        b = cast(ev.DeploymentRolledBack, rec.message)
        m = model(goal_name, b.adapter_digest)
        m.stage, m.held = "retired", False
        note(m, rec, f"rolled back ({b.trigger}): {b.reason}")
        if b.restored_digest:
            restored = model(goal_name, b.restored_digest)
            restored.stage = "champion"
            note(restored, rec, f"champion again after the rollback of {b.adapter_digest[:19]}")
            champion[goal_name] = b.restored_digest
            replaced.discard(b.restored_digest)
        return
    digest = cast(ev.DeploymentStarted, rec.message).adapter.digest
    m = model(goal_name, digest)
    if rec.name == "deployment.started":
        s = cast(ev.DeploymentStarted, rec.message)
        m.stage = "canary" if digest not in replaced else m.stage
        m.run_id, m.eval_id = m.run_id or s.run_id, m.eval_id or s.eval_id
        note(m, rec, f"{s.strategy} started at {s.traffic_percent}%")
    elif rec.name == "deployment.promoted":
        # The promotion names the champion it replaced: that one is retired even when two promotions share a
        # millisecond and come in either order.
        previous = cast(ev.DeploymentPromoted, rec.message).previous_champion_digest or champion.get(goal_name, "")
        if previous and previous != digest:
            old = model(goal_name, previous)
            old.stage = "retired"
            replaced.add(previous)
            note(old, rec, f"replaced by {digest[:19]}")
        if digest not in replaced:
            m.stage, m.held = "champion", False
            champion[goal_name] = digest
        note(m, rec, cast(ev.DeploymentPromoted, rec.message).reason or "promoted")
    else:
        decision = cast("ev.DeploymentApproved | ev.DeploymentRejected | ev.DeploymentHeld | ev.DeploymentResumed", rec.message)
        by = getattr(decision, PEOPLES_DECISIONS[rec.name])
        if rec.name == "deployment.rejected":
            m.stage = "refused"
        m.held = rec.name == "deployment.held" or (m.held and rec.name != "deployment.resumed")
        note(m, rec, rec.name.split(".")[1] + (f": {decision.reason}" if decision.reason else ""), by)


def envelope_json(data: bytes) -> str:
    """An envelope's bytes as indented JSON (for people; the bytes' digest is what was checked)."""
    return json.dumps(json.loads(data), indent=1, sort_keys=True)
