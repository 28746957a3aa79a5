"""Telemetry: one `setup_telemetry()` per process; the trace travels in Kafka headers.

Spans go to OTLP when an endpoint is configured, otherwise to JSON lines under
`state_dir/telemetry/` (one file per process, so concurrent writers never interleave), which
`tuneline trace ID` reads back as a tree.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.kernel.settings import Settings

# Telemetry names live here, once.
SPAN_CONSUME = "consume {event}"
SPAN_PUBLISH = "publish {event}"
SPAN_JOB = "job {kind}"
ATTR_EVENT_ID = "tuneline.event.id"
ATTR_EVENT_TYPE = "tuneline.event.type"
ATTR_SUBJECT = "tuneline.subject"
ATTR_SERVICE = "tuneline.service"

_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_provider: TracerProvider | None = None


class JsonLinesExporter(SpanExporter):
    """Writes finished spans as JSON lines to one file per process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_record(s), separators=(",", ":")) + "\n" for s in spans]
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.writelines(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class SpanLink(TypedDict):
    """A link from a span to another trace's span (W3C hex ids)."""

    trace_id: str
    span_id: str


class SpanRecord(TypedDict):
    """A finished span as written to the local span files (one JSON object a line)."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, str | int | float | bool]
    links: list[SpanLink]


def span_record(span: ReadableSpan) -> SpanRecord:
    """A span as a plain JSON-able record (ids in W3C hex)."""
    ctx = span.get_span_context()
    assert ctx is not None, "a finished SDK span always has a context"
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else "",
        "name": span.name,
        "service": str(span.resource.attributes.get("service.name", "")),
        "start_ns": span.start_time or 0,
        "end_ns": span.end_time or 0,
        "status": span.status.status_code.name,
        "attributes": {k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in (span.attributes or {}).items()},
        "links": [{"trace_id": f"{ln.context.trace_id:032x}", "span_id": f"{ln.context.span_id:016x}"} for ln in span.links],
    }


def setup_telemetry(service: str, settings: Settings) -> TracerProvider:
    """Install the process's tracer provider once: OTLP if configured, else the local span file."""
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter: SpanExporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
        else:
            exporter = JsonLinesExporter(settings.path("telemetry", f"spans-{service}-{os.getpid()}.jsonl"))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def shutdown_telemetry() -> None:
    """Flush and close the span exporter (call at process exit)."""
    if _provider is not None:
        _provider.force_flush(5000)
        _provider.shutdown()


def tracer(name: str = "tuneline") -> trace.Tracer:
    """A tracer from the installed provider (a no-op one before setup)."""
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """The current context as W3C headers (traceparent, tracestate when set)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def current_traceparent() -> str:
    """The current context's traceparent, or "" outside any span."""
    return current_trace_headers().get("traceparent", "")


def trace_id_of(traceparent: str) -> str:
    """The 32-hex trace id inside a traceparent, or ""."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 else ""


def context_from(traceparent: str, tracestate: str = "") -> otel_context.Context:
    """An OpenTelemetry context continuing the given W3C trace (empty: a new trace)."""
    carrier = {"traceparent": traceparent} if traceparent else {}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _propagator.extract(carrier)


def link_to(traceparent: str) -> list[Link]:
    """A span link to the trace in a traceparent (for fan-in: batches, jobs started by many events)."""
    parts = traceparent.split("-")
    if len(parts) != 4:
        return []
    ctx = SpanContext(int(parts[1], 16), int(parts[2], 16), is_remote=True, trace_flags=TraceFlags(int(parts[3], 16)))
    return [Link(ctx)]


def link_current_span(traceparent: str) -> None:
    """Link the current span to another trace (e.g. a prediction to the deployment that served it)."""
    for ln in link_to(traceparent):
        trace.get_current_span().add_link(ln.context)


@contextmanager
def continued_span(name: str, traceparent: str = "", tracestate: str = "", **attributes: str) -> Iterator[trace.Span]:
    """A span whose parent is the trace carried by an event (or a new trace)."""
    token = otel_context.attach(context_from(traceparent, tracestate))
    try:
        with tracer().start_as_current_span(name, attributes=attributes) as span:
            yield span
    finally:
        otel_context.detach(token)


def read_spans(state_dir: Path) -> list[SpanRecord]:
    """Every span recorded under a state folder's telemetry/ (for `tuneline trace`)."""
    spans: list[SpanRecord] = []
    for path in sorted((state_dir / "telemetry").glob("spans-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            # Our own span files, written by span_record above.
            spans.extend(cast(SpanRecord, json.loads(line)) for line in f if line.strip())
    return spans
