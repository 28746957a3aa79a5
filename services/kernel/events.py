"""Event contracts and the one codec between protobuf on the wire and typed values inside.

A record is a CloudEvents 1.0 binary-mode Kafka message: `ce_*` headers, `content-type:
application/protobuf`, W3C `traceparent`/`tracestate`, the protobuf message as the value and the
subject (goal or dataset name) as the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError as ProtoDecodeError
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import DecodeError, UnknownEventType
from services.kernel.ids import uuid7

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/protobuf"
DEADLETTER = "deadletter"

EVENT_TYPES: dict[str, type[Message]] = {
    "goal.applied": ev.GoalApplied,
    "dataset.published": ev.DatasetPublished,
    "dataset.registered": ev.DatasetRegistered,
    "dataset.rejected": ev.DatasetRejected,
    "run.requested": ev.RunRequested,
    "run.started": ev.RunStarted,
    "run.finished": ev.RunFinished,
    "eval.passed": ev.EvalPassed,
    "eval.failed": ev.EvalFailed,
    "deployment.started": ev.DeploymentStarted,
    "deployment.promoted": ev.DeploymentPromoted,
    "deployment.rolled_back": ev.DeploymentRolledBack,
    "deployment.approved": ev.DeploymentApproved,
    "deployment.rejected": ev.DeploymentRejected,
    "deployment.held": ev.DeploymentHeld,
    "deployment.resumed": ev.DeploymentResumed,
    "inference.logged": ev.InferenceLogged,
    "drift.detected": ev.DriftDetected,
    "rollback.requested": ev.RollbackRequested,
    "feedback.recorded": ev.FeedbackRecorded,
    "alert.raised": ev.AlertRaised,
    "retention.applied": ev.RetentionApplied,
    DEADLETTER: ev.DeadLetter,
}
_NAME_BY_CLASS = {cls.DESCRIPTOR.full_name: name for name, cls in EVENT_TYPES.items()}

M = TypeVar("M", bound=Message)


def ce_type(event: str) -> str:
    """The CloudEvents type of an event name: "run.finished" -> "tuneline.run.finished.v1"."""
    return f"tuneline.{event}.v1"


def event_name_of(message: Message) -> str:
    """The event name of a protobuf message instance ("dataset.published" for DatasetPublished)."""
    try:
        return _NAME_BY_CLASS[message.DESCRIPTOR.full_name]
    except KeyError:
        raise UnknownEventType(f"{message.DESCRIPTOR.full_name} is not a Tuneline event") from None


def _event_name_of_type(ce: str) -> str:
    if ce.startswith("tuneline.") and ce.endswith(".v1"):
        name = ce[len("tuneline.") : -len(".v1")]
        if name in EVENT_TYPES:
            return name
    raise UnknownEventType(f"unknown ce_type {ce!r}")


@dataclass(frozen=True)
class Outgoing:
    """An event a handler wants published; the outbox gives it an id, a time and the trace."""

    message: Message
    subject: str

    @property
    def event(self) -> str:
        """The event name, from the message type."""
        return event_name_of(self.message)


@dataclass(frozen=True)
class Incoming(Generic[M]):
    """A decoded event as a consumer sees it."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str
    message: M
    traceparent: str = ""
    tracestate: str = ""
    topic: str = ""
    partition: int = -1
    offset: int = -1
    # The bytes exactly as received (the ledger keeps them); empty for events built in-process.
    raw_value: bytes = b""
    raw_headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Record:
    """A Kafka record ready to produce."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def id(self) -> str:
        """The record's ce_id."""
        return dict(self.headers)["ce_id"].decode()


def encode(
    out: Outgoing,
    *,
    topic: str,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    trace_headers: dict[str, str] | None = None,
) -> Record:
    """Encode an outgoing event as a CloudEvents binary-mode record."""
    when = (time or datetime.now(UTC)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", event_id or uuid7()),
        ("ce_source", source),
        ("ce_type", ce_type(out.event)),
        ("ce_time", when),
        ("ce_subject", out.subject),
        ("content-type", CONTENT_TYPE),
    ]
    headers += sorted((trace_headers or {}).items())
    return Record(topic, out.subject.encode(), out.message.SerializeToString(), [(k, v.encode()) for k, v in headers])


def _is_read(key: str) -> bool:
    """The headers the codec reads: CloudEvents attributes, the content type and the trace context."""
    return key.startswith("ce_") or key in ("content-type", "traceparent", "tracestate")


def _header_map(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    # Other headers are the producer's own business (any bytes): kept raw, never decoded.
    found: dict[str, str] = {}
    for key, value in headers or []:
        if not _is_read(key):
            continue
        try:
            found[key] = value.decode() if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            raise DecodeError(f"header {key!r} is not UTF-8") from None
    return found


def decode(
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None,
    *,
    topic: str = "",
    partition: int = -1,
    offset: int = -1,
    expect: str | None = None,
) -> Incoming[Message]:
    """Decode a record into a typed event; DecodeError/UnknownEventType say what is wrong with it."""
    h = _header_map(headers)
    missing = [k for k in ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time") if not h.get(k)]
    if missing:
        raise DecodeError(f"not a CloudEvent: missing headers {', '.join(missing)}")
    if h["ce_specversion"] != SPEC_VERSION:
        raise DecodeError(f"unsupported ce_specversion {h['ce_specversion']!r}")
    if h.get("content-type", CONTENT_TYPE) != CONTENT_TYPE:
        raise DecodeError(f"unsupported content-type {h['content-type']!r}")
    name = _event_name_of_type(h["ce_type"])
    if expect is not None and name != expect:
        raise UnknownEventType(f"topic {topic!r} carries {expect} events, got {h['ce_type']!r}")
    message = EVENT_TYPES[name]()
    try:
        message.ParseFromString(value or b"")
    except (ProtoDecodeError, RuntimeError, ValueError) as err:
        raise DecodeError(f"value is not a valid {message.DESCRIPTOR.name} protobuf: {err}") from None
    return Incoming(
        id=h["ce_id"],
        type=name,
        source=h["ce_source"],
        time=_parse_time(h["ce_time"]),
        subject=h.get("ce_subject", ""),
        message=message,
        traceparent=h.get("traceparent", ""),
        tracestate=h.get("tracestate", ""),
        topic=topic,
        partition=partition,
        offset=offset,
        raw_value=value or b"",
        raw_headers=tuple((k, v if isinstance(v, bytes) else str(v).encode()) for k, v in headers or []),
    )


def _parse_time(text: str) -> datetime:
    """An RFC 3339 `ce_time`; anything else is a DecodeError (never silently "now")."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DecodeError(f"ce_time {text[:64]!r} is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)") from None
    if when.tzinfo is None:
        raise DecodeError(f"ce_time {text[:64]!r} has no UTC offset (RFC 3339 needs one, e.g. a trailing Z)")
    return when
