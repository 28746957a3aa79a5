"""The drift-report job: render a judged window's Evidently report and store it content-addressed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pandas as pd
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Outgoing
from services.kernel.jobs import Job, JobContext
from services.kernel.store import Store
from services.monitor.store import WindowVerdictRow
from services.monitor.windows import Blobs

Renderer = Callable[[pd.DataFrame, pd.DataFrame], bytes]


def execute_report(job: Job, ctx: JobContext, store: Store, blobs: Blobs, render: Renderer) -> list[Outgoing]:
    """Render the report of one window (verifying both tables' digests) and link it from the window's row."""
    p = json.loads(job.payload)
    window = pd.read_parquet(io.BytesIO(blobs.get_bytes(ev.ArtifactRef(digest=p["window"], uri=p["window_uri"]))))
    reference = pd.read_parquet(io.BytesIO(blobs.get_bytes(ev.ArtifactRef(digest=p["reference"], uri=p["reference_uri"]))))
    ref = blobs.put_bytes(render(reference, window), "text/html")
    with store.session() as s:
        row = s.get(WindowVerdictRow, (p["goal"], p["adapter"], p["index"]))
        if row is not None:
            row.report_digest, row.report_uri = ref.digest, ref.uri
    return []
