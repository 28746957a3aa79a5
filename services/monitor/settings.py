"""The monitor's own settings (env prefix TUNELINE_, like the base)."""

from __future__ import annotations

from pydantic import Field

from services.kernel.settings import Settings


class MonitorSettings(Settings):
    """Settings of the monitor: report cadence, head export, ingest batching."""

    # Render the Evidently HTML for every Nth clean window (drifted windows always get one).
    monitor_report_every: int = 10
    # How often the ledger head is exported outside the store (seconds).
    monitor_head_export_s: float = 5.0
    # How often logged text past its goal's retention is looked for (services.monitor.retention).
    monitor_retention_sweep_s: float = Field(3600.0, gt=0)
    # Alert sinks (services.monitor.alerting): Alertmanager-compatible webhooks and Slack incoming webhooks
    # (JSON lists of http(s) URLs); a failing sink is retried with backoff up to the cap until give-up.
    monitor_alert_webhooks: list[str] = []
    monitor_alert_slack_webhooks: list[str] = []
    monitor_alert_retry_cap_s: float = Field(30.0, gt=0)
    monitor_alert_give_up_s: float = Field(86_400.0, gt=0)
    # Metrics: how often consumer lag is read and the whole ledger re-verified (services.monitor.instruments).
    monitor_lag_every_s: float = Field(15.0, gt=0)
    monitor_verify_every_s: float = Field(60.0, gt=0)
    # How often stored feedback is joined to its predictions and accuracy windows judged (services.monitor.feedback).
    monitor_feedback_every_s: float = Field(1.0, gt=0)
    # One transaction per this many events for the ledger and inference consumers (K1).
    monitor_batch_size: int = 500
