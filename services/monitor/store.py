"""The monitor's tables: the hash-chained ledger, its lookup index, and drift/deployment state."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class LedgerRow(Base):
    """One event, appended once, chained to the previous record (services.kernel.ledger)."""

    __tablename__ = "monitor_ledger"
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    topic: Mapped[str] = mapped_column(sa.String(300))
    partition: Mapped[int] = mapped_column(sa.Integer)
    offset: Mapped[int] = mapped_column(sa.BigInteger)
    ce_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    ce_type: Mapped[str] = mapped_column(sa.String(100))
    headers_json: Mapped[str] = mapped_column(sa.Text)
    payload_digest: Mapped[str] = mapped_column(sa.String(71))
    payload: Mapped[bytes] = mapped_column(sa.LargeBinary)
    prev_hash: Mapped[str] = mapped_column(sa.String(71), unique=True)
    hash: Mapped[str] = mapped_column(sa.String(71))
    __table_args__ = (sa.Index("ix_monitor_ledger_retention", "ce_type", "subject", "event_ms"),)
    # From the record's ce_subject and ce_time (which the chain covers), for retention's queries.
    subject: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    event_ms: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    # The retention.applied record that removed this record's text (its payload is then the redacted one).
    purged_by: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class LineageKey(Base):
    """An id (request, adapter, run, eval, deployment, dataset version, published event) -> ledger record."""

    __tablename__ = "monitor_lineage_keys"
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))


class ReferenceRow(Base):
    """An approved adapter's reference profile (from eval.passed)."""

    __tablename__ = "monitor_references"
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), primary_key=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100))
    eval_id: Mapped[str] = mapped_column(sa.String(64))
    table_digest: Mapped[str] = mapped_column(sa.String(71))
    table_uri: Mapped[str] = mapped_column(sa.Text)


class DeploymentRow(Base):
    """What deployment.* events said about an adapter of a goal."""

    __tablename__ = "monitor_deployments"
    goal_name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[str] = mapped_column(sa.String(20))
    promoted_at_ms: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class WindowRow(Base):
    """A prediction waiting in the open window of its goal and adapter (features of inference.logged)."""

    __tablename__ = "monitor_window_rows"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100), index=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), index=True)
    served_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    error: Mapped[bool] = mapped_column(sa.Boolean)
    latency_ms: Mapped[float] = mapped_column(sa.Float)
    features_json: Mapped[str] = mapped_column(sa.Text)


class DriftStateRow(Base):
    """Per goal and adapter: windows judged, consecutive drifted windows, open incidents."""

    __tablename__ = "monitor_drift_state"
    goal_name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), primary_key=True)
    windows: Mapped[int] = mapped_column(sa.Integer, default=0)
    pending: Mapped[int] = mapped_column(sa.Integer, default=0)
    consecutive: Mapped[int] = mapped_column(sa.Integer, default=0)
    incident_id: Mapped[str] = mapped_column(sa.String(64), default="")
    breach_open: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class RollbackRow(Base):
    """Rollback requests the monitor made: one per incident, and the cooldown's clock."""

    __tablename__ = "monitor_rollbacks"
    incident_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100), index=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(71))
    requested_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


class WindowVerdictRow(Base):
    """A judged window: its verdict and (when rendered) its Evidently report, both content-addressed."""

    __tablename__ = "monitor_windows"
    goal_name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), primary_key=True)
    index: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    drifted: Mapped[bool] = mapped_column(sa.Boolean)
    drift_share: Mapped[float] = mapped_column(sa.Float)
    verdict_digest: Mapped[str] = mapped_column(sa.String(71))
    verdict_uri: Mapped[str] = mapped_column(sa.Text)
    report_digest: Mapped[str] = mapped_column(sa.String(71), default="")
    report_uri: Mapped[str] = mapped_column(sa.Text, default="")
    span_ms: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    drift_ms: Mapped[float] = mapped_column(sa.Float, default=0.0)


class IncidentRow(Base):
    """An alert incident (services.monitor.alerting): what people were told, how often it repeated, when it closed."""

    __tablename__ = "monitor_incidents"
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    goal_name: Mapped[str] = mapped_column(sa.String(300))
    severity: Mapped[str] = mapped_column(sa.String(20))
    summary: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[str] = mapped_column(sa.Text)
    report_uri: Mapped[str] = mapped_column(sa.Text)
    trace_id: Mapped[str] = mapped_column(sa.String(32))
    alerts: Mapped[int] = mapped_column(sa.Integer)
    opened_ms: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    resolved_ms: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class AlertDeliveryRow(Base):
    """One message (firing or resolved) of an incident to one sink, until the sink accepts it."""

    __tablename__ = "monitor_alert_deliveries"
    __table_args__ = (sa.Index("ix_monitor_alert_deliveries_due", "delivered_ms", "given_up", "next_ms"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    incident_key: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(10))
    sink_kind: Mapped[str] = mapped_column(sa.String(10))
    sink_url: Mapped[str] = mapped_column(sa.Text)
    created_ms: Mapped[int] = mapped_column(sa.BigInteger)
    next_ms: Mapped[int] = mapped_column(sa.BigInteger)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    delivered_ms: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    given_up: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")


class EvaluatedRow(Base):
    """An approved adapter's evaluated accuracy (from eval.passed): what live accuracy is compared with."""

    __tablename__ = "monitor_evaluated"
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), primary_key=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100))
    eval_id: Mapped[str] = mapped_column(sa.String(64))
    accuracy: Mapped[float] = mapped_column(sa.Float)


class FeedbackRow(Base):
    """One feedback.recorded, until and after it is joined to its prediction (services.monitor.feedback)."""

    __tablename__ = "monitor_feedback"
    __table_args__ = (sa.Index("ix_monitor_feedback_unmatched", "matched_ms", "received_ms"),
                      sa.Index("ix_monitor_feedback_window", "goal_name", "adapter_digest", "window_index"))
    feedback_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    goal_name: Mapped[str] = mapped_column(sa.String(100))
    label: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(40))
    received_ms: Mapped[int] = mapped_column(sa.BigInteger)
    matched_ms: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), default="")
    correct: Mapped[bool | None] = mapped_column(sa.Boolean, nullable=True)
    confidence: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    window_index: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    problem: Mapped[str] = mapped_column(sa.Text, default="")  # why it joins no prediction (kept, not counted)


class AccuracyStateRow(Base):
    """Per goal and adapter: joined feedback waiting for its window, windows closed, an open accuracy breach."""

    __tablename__ = "monitor_accuracy_state"
    goal_name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), primary_key=True)
    pending: Mapped[int] = mapped_column(sa.Integer, default=0)
    windows: Mapped[int] = mapped_column(sa.Integer, default=0)
    incident_id: Mapped[str] = mapped_column(sa.String(64), default="")


class AccuracyWindowRow(Base):
    """A closed window of live accuracy: predictions with ground truth, accuracy, calibration, the test."""

    __tablename__ = "monitor_accuracy_windows"
    goal_name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    adapter_digest: Mapped[str] = mapped_column(sa.String(71), primary_key=True)
    index: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    samples: Mapped[int] = mapped_column(sa.Integer)
    correct: Mapped[int] = mapped_column(sa.Integer)
    accuracy: Mapped[float] = mapped_column(sa.Float)
    evaluated: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    p_value: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    ece: Mapped[float] = mapped_column(sa.Float)
    breached: Mapped[bool] = mapped_column(sa.Boolean)
    closed_ms: Mapped[int] = mapped_column(sa.BigInteger)


# The alembic revisions of these tables (docs/migrations.md).
MIGRATIONS = Path(__file__).with_name("migrations")
