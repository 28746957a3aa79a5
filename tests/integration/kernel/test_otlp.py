"""OTLP push: a service with OTEL_EXPORTER_OTLP_ENDPOINT set sends its metrics and its spans to the endpoint.

The receiver is the OTLP/gRPC collector service as opentelemetry-proto generates it, on loopback (what an
OpenTelemetry Collector's otlp receiver implements); the sender is a real service process on the real broker.
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Outgoing
from services.kernel.settings import Settings
from tests.support import EventLog, publish_signed, wait_for

pytestmark = pytest.mark.integration


class _Metrics(metrics_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.lock, self.received = threading.Lock(), list[metrics_pb.ExportMetricsServiceRequest]()

    def Export(self, request: metrics_pb.ExportMetricsServiceRequest,
               context: grpc.ServicerContext) -> metrics_pb.ExportMetricsServiceResponse:
        with self.lock:
            self.received.append(request)
        return metrics_pb.ExportMetricsServiceResponse()

    def points(self, name: str) -> list[tuple[str, float]]:
        """(service.name, count or value) of every data point of metric `name` received."""
        out = []
        with self.lock:
            for req in self.received:
                for rm in req.resource_metrics:
                    service = next((a.value.string_value for a in rm.resource.attributes if a.key == "service.name"), "")
                    for m in (m for sm in rm.scope_metrics for m in sm.metrics if m.name == name):
                        out += [(service, float(p.count)) for p in m.histogram.data_points]
                        out += [(service, float(p.as_int or p.as_double)) for p in m.sum.data_points]
        return out


class _Traces(trace_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.lock, self.names = threading.Lock(), list[str]()

    def Export(self, request: trace_pb.ExportTraceServiceRequest,
               context: grpc.ServicerContext) -> trace_pb.ExportTraceServiceResponse:
        with self.lock:
            self.names += [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        return trace_pb.ExportTraceServiceResponse()


def test_a_service_pushes_its_metrics_and_spans_over_otlp(settings: Settings, probe) -> None:
    metrics, traces = _Metrics(), _Traces()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_grpc.add_MetricsServiceServicer_to_server(metrics, server)
    trace_grpc.add_TraceServiceServicer_to_server(traces, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        probe(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}", OTEL_METRIC_EXPORT_INTERVAL="500")
        publish_signed(settings, [Outgoing(ev.GoalApplied(goal_name=f"g{i}", goal_json="{}"), f"g{i}") for i in range(3)], "test/1")
        EventLog(settings, "alert.raised").wait(3, 90)
        wait_for(lambda: [p for p in metrics.points("messaging.process.duration") if p[1] >= 1], 30,
                 "the consumer's processing time pushed over OTLP")
        assert {service for service, _ in metrics.points("messaging.process.duration")} == {"probe"}, \
            "the points carry the service's name"
        assert wait_for(lambda: metrics.points("messaging.client.sent.messages"), 30, "the relay's sends pushed over OTLP")
        assert wait_for(lambda: [n for n in traces.names if n == "consume goal.applied"], 30, "the consumer's span pushed over OTLP")
    finally:
        server.stop(0)
