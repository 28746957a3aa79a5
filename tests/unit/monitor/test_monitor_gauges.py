"""The ledger's gauges as Prometheus reads them: its length, and whether the last verification found it intact."""

import sqlalchemy as sa
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.settings import Settings
from services.monitor import audit
from services.monitor.instruments import MonitorGauges
from tests.support import local_metrics, metric_total


def test_the_ledger_gauges_follow_its_length_and_a_tampered_record(store, make_incoming, tmp_path):
    local_metrics()
    gauges = MonitorGauges(Settings(state_dir=tmp_path), store, lag_every_s=3600, verify_every_s=3600)
    gauges.start()
    try:
        with store.session() as s:
            for i in range(4):
                audit.append_event(make_incoming(ev.AlertRaised(summary=f"a{i}"), offset=i), s)
        gauges.verify()
        scraped = local_metrics()
        assert metric_total(scraped, "tuneline_ledger_length") == 4
        assert metric_total(scraped, "tuneline_ledger_verified") == 1
        with store.session() as s:
            s.execute(sa.text("UPDATE monitor_ledger SET ce_type = 'tuneline.forged.v1' WHERE seq = 2"))
        gauges.verify()
        assert metric_total(local_metrics(), "tuneline_ledger_verified") == 0, "a broken chain reads 0"
    finally:
        gauges.stop()
    assert "tuneline_ledger_length{}" not in local_metrics(), "a stopped monitor's gauges are gone"
