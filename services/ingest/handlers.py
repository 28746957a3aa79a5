"""Ingest handlers: remember goals by dataset; turn each published dataset into an ingest job."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable

from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Incoming, Outgoing
from services.kernel.goals import apply_goal
from services.kernel.jobs import enqueue_job

log = logging.getLogger(__name__)
JOB_KIND = "ingest"


def on_goal_applied(incoming: Incoming[ev.GoalApplied], session: Session) -> Iterable[Outgoing]:
    """Keep the goal: later publications of its dataset follow its data.* policy."""
    goal = apply_goal(incoming, session)
    log.info("goal %s applies to dataset %s", goal.name, goal.data.dataset)
    return []


def on_dataset_published(incoming: Incoming[ev.DatasetPublished], session: Session) -> Iterable[Outgoing]:
    """Queue the ingest of a published dataset (one job per event id; the job emits the verdict)."""
    payload = json.dumps({
        "event_id": incoming.id,
        "published": base64.b64encode(incoming.message.SerializeToString()).decode(),
    })
    job_id = enqueue_job(session, JOB_KIND, incoming.id, payload, incoming.traceparent)
    log.info("dataset %s published (event %s): ingest job %s", incoming.message.dataset_name, incoming.id, job_id)
    return []
