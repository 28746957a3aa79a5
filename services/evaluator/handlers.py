"""Event handlers: plain functions, a decoded event and the session in, new events out.

run.finished only records the request and queues a job (evaluation is long work); goal.applied
teaches the evaluator a goal's acceptance criteria; deployment.* events say which adapter serves.
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.evaluator.store import AdapterRow, ChampionRow, RequestRow
from services.kernel.events import Incoming, Outgoing
from services.kernel.goals import apply_goal, goal_by_version
from services.kernel.ids import uuid7
from services.kernel.jobs import enqueue_job
from services.kernel.store import utcnow

log = logging.getLogger(__name__)

JOB_KIND = "evaluate"
WAITING_GOAL, QUEUED = "waiting_goal", "queued"


def _enqueue(session: Session, req: RequestRow) -> None:
    payload = json.dumps({"eval_id": req.eval_id, "run_id": req.run_id})
    enqueue_job(session, JOB_KIND, req.run_id, payload, traceparent=req.traceparent)
    req.status = QUEUED


def remember_adapter(session: Session, ref: ev.ArtifactRef) -> None:
    """Keep where an adapter lives, so it can be fetched as a champion later."""
    if ref.digest and session.get(AdapterRow, ref.digest) is None:
        session.add(AdapterRow(digest=ref.digest, uri=ref.uri, media_type=ref.media_type, size_bytes=ref.size_bytes))


def on_run_finished(incoming: Incoming[ev.RunFinished], session: Session) -> list[Outgoing]:
    """Queue one evaluation per successful run (a failed run has nothing to evaluate)."""
    run = incoming.message
    if run.status != "succeeded":
        log.info("run %s finished %s: nothing to evaluate", run.run_id, run.status or "without a status")
        return []
    remember_adapter(session, run.adapter)
    if session.get(RequestRow, run.run_id) is not None:
        return []  # the same run announced twice under another event id: still one evaluation
    req = RequestRow(run_id=run.run_id, eval_id=uuid7(), goal_name=run.goal_name, goal_version=run.goal_version,
                     run_finished=run.SerializeToString(), traceparent=incoming.traceparent,
                     status=WAITING_GOAL, created_at=utcnow())
    session.add(req)
    if goal_by_version(session, run.goal_version) is not None:
        _enqueue(session, req)
    else:
        log.info("run %s waits for goal %s %s", run.run_id, run.goal_name, run.goal_version)
    return []


def on_goal_applied(incoming: Incoming[ev.GoalApplied], session: Session) -> list[Outgoing]:
    """Learn a goal version, then queue the runs that were waiting for it."""
    goal = apply_goal(incoming, session)  # InvalidInput: dead-lettered with the reason
    waiting = session.scalars(sa.select(RequestRow).where(
        RequestRow.goal_version == goal.version, RequestRow.status == WAITING_GOAL))
    for req in waiting:
        _enqueue(session, req)
    return []


def _set_champion(session: Session, incoming: Incoming[ev.DeploymentPromoted] | Incoming[ev.DeploymentRolledBack],
                  goal: str, digest: str) -> None:
    row = session.get(ChampionRow, goal)
    if row is not None and row.event_time.replace(tzinfo=incoming.time.tzinfo) > incoming.time:
        log.info("ignoring stale %s for %s", incoming.type, goal)
        return
    if row is None:
        session.add(ChampionRow(goal_name=goal, digest=digest, event_time=incoming.time, event_id=incoming.id))
    else:
        row.digest, row.event_time, row.event_id = digest, incoming.time, incoming.id


def on_deployment_promoted(incoming: Incoming[ev.DeploymentPromoted], session: Session) -> list[Outgoing]:
    """The promoted adapter becomes the goal's champion."""
    msg = incoming.message
    remember_adapter(session, msg.adapter)
    _set_champion(session, incoming, msg.goal_name, msg.adapter.digest)
    return []


def on_deployment_rolled_back(incoming: Incoming[ev.DeploymentRolledBack], session: Session) -> list[Outgoing]:
    """After a rollback the restored adapter (or nothing) serves."""
    msg = incoming.message
    _set_champion(session, incoming, msg.goal_name, msg.restored_digest)
    return []
