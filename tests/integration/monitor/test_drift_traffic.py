"""M3 and R25 on real prediction features: null traffic stays quiet, shifted traffic rolls the canary back."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

DRIFT_WINDOWS = 2  # goals/banking77.yaml rollback.drift_windows


def _first_detection(driver, windows, shift, share, max_windows):
    for i in range(max_windows):
        if any(o.event == "drift.detected" for o in driver.window(windows(shift, share))):
            return i + 1
    return None


def test_banking77_test_traffic_raises_no_drift_over_20_windows(driver, windows):
    for _ in range(20):
        driver.window(windows(None, 0.0))
    assert driver.events("drift.detected") == [] and driver.events("rollback.requested") == []


@pytest.mark.parametrize("shift,share", [("clinc150", 0.3), ("clinc150", 1.0), ("hwu64", 0.3), ("hwu64", 1.0)])
def test_shifted_traffic_is_detected_and_the_canary_rolled_back_once(driver, windows, shift, share):
    for _ in range(3):
        driver.window(windows(None, 0.0))
    delay = _first_detection(driver, windows, shift, share, max_windows=DRIFT_WINDOWS + 2)
    assert delay is not None and delay >= DRIFT_WINDOWS, f"{shift} {share:.0%} not detected"
    if share == 1.0:
        assert delay == DRIFT_WINDOWS
    for _ in range(3):  # the drift goes on: the open incident asks for nothing more
        driver.window(windows(shift, share))
    requests = driver.events("rollback.requested")
    assert len(requests) == 1 and requests[0].message.adapter_digest.startswith("sha256:aaaa")
    assert len(driver.events("drift.detected")) == 1
    detected = driver.events("drift.detected")[0].message
    assert detected.incident_id == requests[0].message.incident_id and detected.verdict.digest
    assert driver.events("alert.raised")[0].message.kind == "drift"


def test_the_drifted_window_gets_an_evidently_report_stored_by_digest(driver, windows):
    import functools

    import sqlalchemy as sa

    from services.kernel.jobs import JobRunner
    from services.monitor.adapters.evidently_report import render_drift_html
    from services.monitor.reports import execute_report
    from services.monitor.store import WindowVerdictRow
    from services.monitor.windows import REPORT_JOB

    for _ in range(DRIFT_WINDOWS):
        driver.window(windows("clinc150", 1.0))
    assert driver.events("drift.detected")
    blobs = driver.deps.blobs
    runner = JobRunner(driver.store, REPORT_JOB, functools.partial(execute_report, store=driver.store, blobs=blobs,
                                                                   render=render_drift_html))
    assert runner.run_once()
    with driver.store.session() as s:
        row = s.execute(sa.select(WindowVerdictRow).where(WindowVerdictRow.report_digest != "")).scalars().one()
    from tuneline.events.v1 import events_pb2 as ev

    html = blobs.get_bytes(ev.ArtifactRef(digest=row.report_digest, uri=row.report_uri))
    assert row.drifted and b"<html" in html[:2000].lower()
