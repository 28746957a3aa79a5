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
    assert not [o for o in driver.events("alert.raised") if o.message.kind == "drift_cleared"]
    requests = driver.events("rollback.requested")
    assert len(requests) == 1 and requests[0].message.adapter_digest.startswith("sha256:aaaa")
    assert len(driver.events("drift.detected")) == 1
    detected = driver.events("drift.detected")[0].message
    assert detected.incident_id == requests[0].message.incident_id and detected.verdict.digest
    assert driver.events("alert.raised")[0].message.kind == "drift"


def test_the_incident_carries_its_evidently_report_and_the_alert_links_it(driver, windows):
    """DriftDetected.report_html is the stored report of the window that opened the incident, and the drift
    alert links it (the verdict JSON stays in the details); the rollback request did not wait for it."""
    import sqlalchemy as sa
    from tuneline.events.v1 import events_pb2 as ev

    from services.monitor.store import WindowVerdictRow

    outs = [driver.window(windows("clinc150", 1.0)) for _ in range(DRIFT_WINDOWS)]
    assert [o.event for o in outs[-1]][:1] == ["rollback.requested"], "the request commits with the window"
    [detected] = [o.message for o in driver.events("drift.detected")]
    with driver.store.session() as s:
        row = s.execute(sa.select(WindowVerdictRow).where(WindowVerdictRow.report_digest != "")).scalars().one()
    assert row.drifted and (detected.report_html.digest, detected.report_html.uri) == (row.report_digest, row.report_uri)
    html = driver.deps.blobs.get_bytes(ev.ArtifactRef(digest=row.report_digest, uri=row.report_uri))
    assert b"<html" in html[:2000].lower()
    [alert] = [o.message for o in driver.events("alert.raised") if o.message.kind == "drift"]
    assert alert.report_uri == row.report_uri and detected.verdict.uri in alert.details


def test_an_incident_whose_report_cannot_be_rendered_is_raised_without_it(driver, windows):
    def broken(*_):
        raise RuntimeError("renderer down")

    driver.render = broken
    for _ in range(DRIFT_WINDOWS):
        driver.window(windows("clinc150", 1.0))
    [detected] = [o.message for o in driver.events("drift.detected")]
    [alert] = [o.message for o in driver.events("alert.raised") if o.message.kind == "drift"]
    assert not detected.HasField("report_html") and alert.report_uri == detected.verdict.uri


def test_a_clean_window_ends_the_incident_and_says_so_after_the_incident_alert(driver, windows):
    for _ in range(DRIFT_WINDOWS):
        driver.window(windows("hwu64", 1.0))
    for _ in range(2):  # the traffic is back to normal: the first clean window closes the incident, once
        driver.window(windows(None, 0.0))
    kinds = [o.message.kind for o in driver.events("alert.raised")]
    assert kinds == ["drift", "drift_cleared"], kinds
