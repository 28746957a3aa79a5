"""The drift-report jobs: render a judged window's Evidently report and store it content-addressed.

A window that opened an incident has a job of its own kind (INCIDENT_JOB): once its report is stored,
the job emits the incident's `drift.detected` carrying the report, and the drift alert linking it. A
report that cannot be rendered does not hold the incident back: the event and the alert go out without
it (the alert links the verdict), logged.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Callable

import pandas as pd
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Outgoing
from services.kernel.jobs import Job, JobContext
from services.kernel.store import Store
from services.monitor.domain.alerts import Alert
from services.monitor.handlers import alert_from
from services.monitor.store import WindowVerdictRow
from services.monitor.windows import Blobs

Renderer = Callable[[pd.DataFrame, pd.DataFrame], bytes]
log = logging.getLogger(__name__)


def execute_report(job: Job, ctx: JobContext, store: Store, blobs: Blobs, render: Renderer) -> list[Outgoing]:
    """Render the report of one window (verifying both tables' digests) and link it from the window's row."""
    _render_and_link(json.loads(job.payload), store, blobs, render)
    return []


def execute_incident(job: Job, ctx: JobContext, store: Store, blobs: Blobs, render: Renderer) -> list[Outgoing]:
    """The report of the window that opened an incident, then the incident's drift.detected and alert, both linking it."""
    p = json.loads(job.payload)
    if "cleared" in p:  # the incident's clean window: only after the incident's own events
        return [alert_from(Alert(**p["cleared"]), p["source_event"], "inference.logged", p["goal"], p["traceparent"])]
    try:
        report: ev.ArtifactRef | None = _render_and_link(p, store, blobs, render)
    except Exception as err:  # noqa: BLE001 - the incident goes out without its report rather than never
        log.warning("goal %s: the drift report of window %d could not be rendered (%s); the incident is raised without it",
                    p["goal"], p["index"], err)
        report = None
    return incident_events(p, report)


def incident_events(payload: dict[str, object], report: ev.ArtifactRef | None) -> list[Outgoing]:
    """The incident's drift.detected and drift alert from an INCIDENT_JOB payload, with the report when there is one."""
    drift = ev.DriftDetected.FromString(bytes.fromhex(str(payload["drift"])))
    alert = Alert(**payload["alert"])  # type: ignore[arg-type]  # the fields windows.py wrote from an Alert
    if report is not None:
        drift.report_html.CopyFrom(report)
        alert = dataclasses.replace(alert, details=f"{alert.details}; verdict: {alert.report_uri}".lstrip("; "),
                                    report_uri=report.uri)
    source, traceparent = str(payload["source_event"]), str(payload["traceparent"])
    return [Outgoing(drift, drift.goal_name), alert_from(alert, source, "inference.logged", drift.goal_name, traceparent)]


def _render_and_link(p: dict[str, object], store: Store, blobs: Blobs, render: Renderer) -> ev.ArtifactRef:
    window = pd.read_parquet(io.BytesIO(blobs.get_bytes(ev.ArtifactRef(digest=str(p["window"]), uri=str(p["window_uri"])))))
    reference = pd.read_parquet(io.BytesIO(blobs.get_bytes(
        ev.ArtifactRef(digest=str(p["reference"]), uri=str(p["reference_uri"])))))
    ref = blobs.put_bytes(render(reference, window), "text/html")
    with store.session() as s:
        row = s.get(WindowVerdictRow, (p["goal"], p["adapter"], p["index"]))
        if row is not None:
            row.report_digest, row.report_uri = ref.digest, ref.uri
    return ref
