"""Alert rules for ops: what deserves an alert, how severe, and what it says.

Alerts come from events other services emit (rejected datasets, failed runs and evaluations, dead
letters, rollbacks done) and from the monitor's own decisions (drift incidents, rollback requests,
error-rate and latency breaches in a window of the inference log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Alert:
    """An alert before it becomes an alert.raised event."""

    kind: str
    severity: Severity
    goal_name: str
    summary: str
    details: str = ""
    report_uri: str = ""
    trace_id: str = ""
    adapter: str = ""  # the adapter it is about, when it is about one


@dataclass(frozen=True)
class ServingHealth:
    """A window's error rate and latency p99 (over successful requests) against the goal's limits."""

    requests: int
    error_rate: float
    latency_p99_ms: float
    error_breach: bool
    latency_breach: bool


def serving_health(errors: Sequence[bool], latencies_ms: Sequence[float], max_error_rate: float, max_p99_ms: float) -> ServingHealth:
    """Error rate and p99 of one window, and whether either breaches the goal's rollback limits."""
    n = len(errors)
    error_rate = float(np.mean(errors)) if n else 0.0
    ok = [lat for lat, err in zip(latencies_ms, errors, strict=True) if not err]
    p99 = float(np.percentile(ok, 99)) if ok else 0.0
    return ServingHealth(n, error_rate, p99, error_rate > max_error_rate, p99 > max_p99_ms)


def breach_alerts(goal: str, adapter: str, health: ServingHealth, max_error_rate: float, max_p99_ms: float) -> list[Alert]:
    """Critical alerts for a window whose error rate or latency breaches the goal's limits."""
    alerts = []
    if health.error_breach:
        alerts.append(Alert("error_rate", "critical", goal,
                            f"error rate {health.error_rate:.1%} > {max_error_rate:.1%} on adapter {adapter[:19]}",
                            f"{health.requests} requests in the window", adapter=adapter))
    if health.latency_breach:
        alerts.append(Alert("latency", "critical", goal,
                            f"latency p99 {health.latency_p99_ms:.1f} ms > {max_p99_ms:.0f} ms on adapter {adapter[:19]}",
                            f"{health.requests} requests in the window", adapter=adapter))
    return alerts


def drift_alert(goal: str, adapter: str, share: float, windows: int, action: str, reason: str, report_uri: str) -> Alert:
    """The alert for an opened drift incident: critical when a person must decide."""
    severity: Severity = "warning" if action == "rollback" else "critical"
    then = "rollback requested" if action == "rollback" else "escalated: a person decides"
    return Alert("drift", severity, goal,
                 f"drift on adapter {adapter[:19]}: share {share:.0%} for {windows} windows; {then}",
                 reason, report_uri, adapter=adapter)
