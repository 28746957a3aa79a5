"""Wiring: the monitor's store, subscriptions, report job runner, gRPC query server and head exporter."""

from __future__ import annotations

import functools

from services.kernel.blobs import BlobStore
from services.kernel.bus.consumer import Handler, Subscription
from services.kernel.events import EVENT_TYPES, Outgoing
from services.kernel.jobs import JobRunner
from services.kernel.runtime import ServiceRuntime
from services.kernel.store import Store
from services.monitor import alerting, audit, feedback, handlers, instruments
from services.monitor.adapters.evidently_report import render_drift_html
from services.monitor.domain import alerts
from services.monitor.entrypoints.grpc_server import QueryServer, QueryServicer
from services.monitor.entrypoints.head_exporter import head_exporter
from services.monitor.entrypoints.registry_server import RegistryServicer
from services.monitor.lineage import Lineage
from services.monitor.reports import execute_incident, execute_report
from services.monitor.retention import retention_sweeper
from services.monitor.settings import MonitorSettings
from services.monitor.store import MIGRATIONS
from services.monitor.windows import INCIDENT_JOB, REPORT_JOB, WindowDeps

LEDGER, MONITOR = "monitor-ledger", "monitor"


def subscriptions(settings: MonitorSettings, deps: WindowDeps) -> list[Subscription]:
    """The ledger consumer on every topic (dead letters included) and the monitor's own handlers."""
    batch = settings.monitor_batch_size
    sinks = alerting.sinks_from(settings.monitor_alert_webhooks, settings.monitor_alert_slack_webhooks)
    # A retention decision is carried out where it is appended, one at a time (services.monitor.retention).
    subs = [Subscription(event=name, handler=handlers.record_in_ledger, consumer=LEDGER, batch_size=batch)
            for name in EVENT_TYPES if name != "retention.applied"]
    subs.append(Subscription(event="retention.applied", handler=handlers.on_retention_applied, consumer=LEDGER))
    routes: dict[str, Handler] = {"goal.applied": handlers.on_goal_applied, "eval.passed": handlers.on_eval_passed,
                                  "eval.failed": handlers.on_eval_failed, "deployment.started": handlers.on_deployment_started,
                                  "deployment.promoted": handlers.on_deployment_promoted,
                                  "deployment.rolled_back": handlers.on_deployment_rolled_back,
                                  "inference.logged": functools.partial(handlers.on_inference_logged, deps=deps),
                                  "dataset.rejected": handlers.on_dataset_rejected, "run.finished": handlers.on_run_finished,
                                  "deadletter": handlers.on_dead_letter,
                                  "feedback.recorded": feedback.on_feedback_recorded,
                                  "alert.raised": functools.partial(alerting.on_alert_raised, sinks=sinks)}
    return subs + [Subscription(event=e, handler=h, consumer=MONITOR, batch_size=batch if e == "inference.logged" else 1)
                   for e, h in routes.items()]


def feedback_alert(alert: alerts.Alert, source_id: str, subject: str) -> Outgoing:
    """The alert.raised of an accuracy incident (caused by the feedback that closed its window)."""
    return handlers.alert_from(alert, source_id, "feedback.recorded", subject, "")


def build(settings: MonitorSettings) -> ServiceRuntime:
    """The monitor's runtime, ready to run."""
    store = Store.open(settings, "monitor", MIGRATIONS)
    blobs = BlobStore.from_settings(settings)
    deps = WindowDeps(blobs=blobs, report_every=settings.monitor_report_every)
    # Two runners: an incident's report (and then its drift.detected) never waits behind periodic reports.
    runners = [JobRunner(store, kind, functools.partial(execute, store=store, blobs=blobs, render=render_drift_html))
               for kind, execute in ((INCIDENT_JOB, execute_incident), (REPORT_JOB, execute_report))]
    server = QueryServer(settings, QueryServicer(settings, store, Lineage(store, blobs)), RegistryServicer(store, blobs))
    exporter = head_exporter(store, audit.head_file(settings.state_dir), settings.monitor_head_export_s)
    sweeper = retention_sweeper(store, settings.monitor_retention_sweep_s)
    matcher = feedback.feedback_matcher(store, settings.monitor_feedback_every_s, feedback_alert)
    sender = alerting.AlertSender(store, retry_cap_s=settings.monitor_alert_retry_cap_s, give_up_s=settings.monitor_alert_give_up_s)
    gauges = instruments.MonitorGauges(settings, store, settings.monitor_lag_every_s, settings.monitor_verify_every_s)
    return ServiceRuntime("monitor", settings, store, subscriptions(settings, deps), job_runners=runners,
                          background=[server, exporter, sweeper, matcher, sender, gauges])
