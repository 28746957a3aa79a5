"""The monitor's drift and consumer-lag instruments as Prometheus reads them (the ledger's: test_monitor_gauges)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.kernel.settings import Settings
from services.monitor import instruments
from services.monitor.instruments import MonitorGauges, window_judged
from tests.support import local_metrics, metric_total

ADAPTER = "sha256:" + "b" * 64


def test_a_judged_window_counts_once_its_transaction_commits(store) -> None:
    local_metrics()
    judged = "tuneline_drift_windows_total"
    before = local_metrics()
    with pytest.raises(RuntimeError), store.session() as session:
        window_judged(session, "metered", ADAPTER, True, 0.9)
        raise RuntimeError("the transaction fails after judging")
    assert metric_total(local_metrics(), judged, goal="metered") == metric_total(before, judged, goal="metered"), \
        "a rolled-back judgement is not counted"

    with store.session() as session:
        window_judged(session, "metered", ADAPTER, False, 0.25)
    after = local_metrics()
    assert metric_total(after, judged, goal="metered", drifted="false") - metric_total(before, judged, goal="metered", drifted="false") == 1
    assert metric_total(after, judged, goal="metered", drifted="true") == metric_total(before, judged, goal="metered", drifted="true")
    assert after["tuneline_drift_share{adapter=" + "b" * 12 + ",goal=metered}"] == 0.25, "the last committed window's share"


def test_the_lag_gauge_shows_the_last_read_and_none_when_the_broker_does_not_answer(store, tmp_path, monkeypatch) -> None:
    local_metrics()
    reads: list[dict[str, int] | Exception] = [{"unit.tuneline-ingest": 7, "unit.tuneline-monitor": 0}]

    def lag(_settings: Settings) -> dict[str, int]:
        read = reads.pop(0)
        if isinstance(read, Exception):
            raise read
        return read

    monkeypatch.setattr(instruments, "consumer_lag", lag)
    gauges = MonitorGauges(Settings(state_dir=tmp_path), store, lag_every_s=3600, verify_every_s=3600)
    gauges.start()
    try:
        scraped = local_metrics()
        assert metric_total(scraped, "tuneline_bus_consumer_lag") == 0 and "tuneline_ledger_verified{}" not in scraped, \
            "nothing read yet, nothing exported"
        gauges.refresh_lag()
        scraped = local_metrics()
        assert scraped["tuneline_bus_consumer_lag{group=unit.tuneline-ingest}"] == 7
        assert scraped["tuneline_bus_consumer_lag{group=unit.tuneline-monitor}"] == 0
        reads.append(KafkaException(KafkaError(KafkaError._TRANSPORT)))
        with pytest.raises(KafkaException):
            gauges.refresh_lag()
        assert not any(k.startswith("tuneline_bus_consumer_lag{") for k in local_metrics()), "no stale lag"
    finally:
        gauges.stop()
