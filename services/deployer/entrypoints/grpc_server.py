"""The gRPC server: Inference (+ Admin when given), health, reflection, bearer-token auth, graceful stop.

Status codes: INVALID_ARGUMENT for bad input (including invalid UTF-8, which protobuf refuses while
parsing: our own deserializer turns that refusal into INVALID_ARGUMENT instead of gRPC's INTERNAL),
RESOURCE_EXHAUSTED for a message over max_message_bytes or a full queue, NOT_FOUND for a goal with
nothing serving, UNAVAILABLE while draining or when the chosen adapter is not loaded,
UNAUTHENTICATED for a missing, malformed or expired token, PERMISSION_DENIED for an unknown one, a
missing scope or another tenant's goal (services.kernel.grpc_auth; every refusal is audited).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import NoReturn, Protocol, TypeVar

import grpc
from google.protobuf.message import DecodeError as ProtoDecodeError
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tuneline.serving.v1 import inference_pb2 as pb

from services.deployer.domain.routing import RoutingTable
from services.deployer.serving import metrics
from services.deployer.serving.batcher import MicroBatcher, Overloaded, ShuttingDown
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.inference_log import LogSink
from services.deployer.serving.outcome import ServedObserver
from services.deployer.serving.predictions import AdapterNotLoaded, BatchModel
from services.deployer.serving.responder import Answer, LoadedAdapters, Question, Responder
from services.kernel.credentials import Refused
from services.kernel.errors import InvalidInput, NotFound
from services.kernel.goals import TenantDirectory
from services.kernel.grpc_auth import Guard, status_of
from services.kernel.grpc_tls import bind
from services.kernel.settings import Settings
from services.kernel.telemetry import continued_span

log = logging.getLogger(__name__)
INFERENCE = pb.DESCRIPTOR.services_by_name["Inference"].full_name
ADMIN = pb.DESCRIPTOR.services_by_name["Admin"].full_name
INFERENCE_LOG_HEALTH = "tuneline.deployer.InferenceLog"
DRAIN_QUIET_S = 0.25  # draining ends once no call arrived for this long and none is in flight
DRAIN_FINAL_GRACE_S = 1.0  # then gRPC's own stop: refusals finish, Health.Watch streams are closed

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_CallReq = TypeVar("_CallReq", bound=Message, contravariant=True)
_CallResp = TypeVar("_CallResp", bound=Message, covariant=True)
_Metadata = Sequence[tuple[str, str | bytes]]


class ServingPool(BatchModel, LoadedAdapters, Protocol):
    """The adapter pool as the server sees it: the batcher runs batches on it, the responder asks what is loaded."""


class UnaryCall(Protocol[_CallReq, _CallResp]):
    """One unary-unary method as a client calls it: a grpc.UnaryUnaryMultiCallable, typed (grpc itself is not)."""

    def __call__(self, request: _CallReq, timeout: float | None = None, metadata: _Metadata | None = None,
                 credentials: grpc.CallCredentials | None = None, wait_for_ready: bool | None = None,
                 compression: grpc.Compression | None = None) -> _CallResp: ...

    def future(self, request: _CallReq, timeout: float | None = None, metadata: _Metadata | None = None,
               credentials: grpc.CallCredentials | None = None, wait_for_ready: bool | None = None,
               compression: grpc.Compression | None = None) -> grpc.Future: ...


@dataclass(frozen=True)
class _Undecodable:
    """What our deserializer returns for bytes protobuf refuses (invalid UTF-8 in a string field)."""

    reason: str


def _tolerant(message_cls: type[Message]) -> Callable[[bytes], Message | _Undecodable]:
    def parse(data: bytes) -> Message | _Undecodable:
        try:
            return message_cls.FromString(data)
        except (ProtoDecodeError, ValueError, RuntimeError) as err:
            return _Undecodable(str(err) or "the request is not a valid protobuf")
    return parse


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    """context.abort(), which always raises (grpc is untyped, so the type checker cannot know that)."""
    context.abort(code, details)
    raise AssertionError("grpc.ServicerContext.abort returned instead of raising")


def _status_of(err: BaseException) -> grpc.StatusCode:
    if isinstance(err, Refused):
        return status_of(err)
    if isinstance(err, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(err, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(err, ShuttingDown | AdapterNotLoaded):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(err, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(err, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL


def _to_pb(a: Answer) -> pb.PredictResponse:
    return pb.PredictResponse(
        label=a.label, confidence=a.confidence, escalate=a.escalate, escalate_reason=a.escalate_reason,
        top_k=[pb.LabelScore(label=lbl, score=s) for lbl, s in a.top_k], adapter_digest=a.slot.digest,
        dataset_version=a.slot.dataset_version, goal_version=a.slot.goal_version, request_id=a.request_id,
        trace_id=a.trace_id, variant=a.slot.role)


@dataclass(frozen=True)
class ServingStats:
    """Counters for health details, metrics and the drain check (started == answered + failed once idle)."""

    started: int
    answered: int
    failed: int
    queued: int
    batches: int
    batched_items: int
    unlogged: int
    mirror_skipped: int


class InferenceServicer:
    """Inference.Predict and PredictBatch over the Responder, each question checked against its goal's tenant."""

    def __init__(self, responder: Responder, guard: Guard, tenants: TenantDirectory) -> None:
        self._responder, self._guard, self._tenants = responder, guard, tenants
        self._lock = threading.Lock()
        self.started = self.answered = self.failed = 0
        self._in_flight = 0
        self._draining = False
        self._last_call = time.monotonic()

    def _admit(self) -> bool:
        """Count a call in (started, in flight) unless the server is draining."""
        with self._lock:
            self._last_call = time.monotonic()
            if self._draining:
                return False
            self.started += 1
            self._in_flight += 1
            return True

    def _leave(self, outcome: str) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)
            self._in_flight -= 1
            self._last_call = time.monotonic()

    def drain(self) -> None:
        """From now on refuse new calls with UNAVAILABLE; calls already admitted go on."""
        with self._lock:
            self._draining = True

    def settled(self, quiet_s: float) -> bool:
        """True when no admitted call is in flight and no call at all arrived for quiet_s."""
        with self._lock:
            return self._in_flight == 0 and time.monotonic() - self._last_call >= quiet_s

    def Predict(self, request: pb.PredictRequest | _Undecodable, context: grpc.ServicerContext) -> pb.PredictResponse:
        """One prediction."""
        return self._call("Predict", context, request,
                          lambda r, q: _to_pb(self._responder.answer(q(r), context.time_remaining())))

    def PredictBatch(self, request: pb.PredictBatchRequest | _Undecodable,
                     context: grpc.ServicerContext) -> pb.PredictBatchResponse:
        """Several predictions in one call."""
        def run(r: pb.PredictBatchRequest, q: Callable[[pb.PredictRequest], Question]) -> pb.PredictBatchResponse:
            answers = self._responder.answer_many([q(x) for x in r.requests], context.time_remaining())
            return pb.PredictBatchResponse(responses=[_to_pb(a) for a in answers])
        return self._call("PredictBatch", context, request, run)

    def _call(self, method: str, context: grpc.ServicerContext, request: _Req | _Undecodable,
              run: Callable[[_Req, Callable[[pb.PredictRequest], Question]], _Resp]) -> _Resp:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return self._answer(context, request, run)
        except Exception as err:
            # context.abort() raised after setting the status; anything else is gRPC's own failure of the call.
            code = context.code() or _status_of(err)
            raise
        finally:
            metrics.CALL_DURATION.record(time.perf_counter() - started, {
                "rpc.system": "grpc", "rpc.method": f"{INFERENCE}/{method}", "rpc.grpc.status_code": code.value[0]})

    def _answer(self, context: grpc.ServicerContext, request: _Req | _Undecodable,
                run: Callable[[_Req, Callable[[pb.PredictRequest], Question]], _Resp]) -> _Resp:
        if isinstance(request, _Undecodable):
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"malformed request (text must be valid UTF-8): {request.reason}")
        traceparent = dict(context.invocation_metadata()).get("traceparent", "")
        with continued_span("inference.predict", traceparent) as span:
            ctx = span.get_span_context()
            trace_id = f"{ctx.trace_id:032x}" if ctx.is_valid else ""
            parent = f"00-{trace_id}-{ctx.span_id:016x}-01" if ctx.is_valid else traceparent

            def question(r: pb.PredictRequest) -> Question:
                return Question(r.goal, r.text, r.request_id, self._tenant(r), r.top_k, trace_id, parent)
            if not self._admit():
                metrics.REFUSALS.add(1, {"reason": "draining"})
                _abort(context, grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry on another replica")
            try:
                response = run(request, question)
                self._leave("answered")
                return response
            except Exception as err:
                self._leave("failed")
                code = _status_of(err)
                if code is grpc.StatusCode.INTERNAL:
                    log.exception("prediction failed")
                _abort(context, code, str(err) if code is not grpc.StatusCode.INTERNAL else "internal error")

    def _tenant(self, r: pb.PredictRequest) -> str:
        """The tenant of the request's goal once the caller may ask it (Refused, InvalidInput otherwise)."""
        tenant = self._tenants.tenant_of(r.goal)
        self._guard.check_tenant(tenant, f"goal {r.goal!r}")
        if r.tenant and tenant is not None and r.tenant != tenant:
            raise InvalidInput(f"goal {r.goal!r} belongs to tenant {tenant!r}, not {r.tenant!r}",
                               hint="leave tenant empty: the server knows each goal's tenant")
        return tenant or r.tenant


def service_handler(service: str, servicer: object, tolerant: bool = False) -> grpc.GenericRpcHandler:
    """Unary handlers for every method of a service in inference.proto, built from its descriptor.

    Built here rather than taken from the generated *_pb2_grpc module so that our own (tolerant)
    deserializer can stand in for protobuf's.
    """
    methods = {}
    for m in pb.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[-1]].methods:
        request_cls, response_cls = GetMessageClass(m.input_type), GetMessageClass(m.output_type)
        methods[m.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, m.name), request_deserializer=_tolerant(request_cls) if tolerant else request_cls.FromString,
            response_serializer=response_cls.SerializeToString)
    return grpc.method_handlers_generic_handler(service, methods)


class InferenceClient:
    """A client of Inference and Admin (methods named as in the proto; metadata/timeout as keywords)."""

    # Set in __init__ from the proto's descriptors; declared here for the type checker.
    Predict: UnaryCall[pb.PredictRequest, pb.PredictResponse]
    PredictBatch: UnaryCall[pb.PredictBatchRequest, pb.PredictBatchResponse]
    ListDeployments: UnaryCall[pb.ListDeploymentsRequest, pb.ListDeploymentsResponse]
    Rollback: UnaryCall[pb.RollbackRequest, pb.RollbackResponse]

    def __init__(self, channel: grpc.Channel) -> None:
        for service in (INFERENCE, ADMIN):
            for m in pb.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[-1]].methods:
                setattr(self, m.name, channel.unary_unary(
                    f"/{service}/{m.name}", request_serializer=GetMessageClass(m.input_type).SerializeToString,
                    response_deserializer=GetMessageClass(m.output_type).FromString))


class InferenceServer:
    """The running gRPC server and what it owns (batcher, log); start(), stop(grace_s), wait()."""

    def __init__(self, server: grpc.Server, port: int, batcher: MicroBatcher, servicer: InferenceServicer,
                 responder: Responder, health_servicer: health.HealthServicer, log_sink: LogSink,
                 config: ServingConfig, routing: RoutingTable) -> None:
        self.port = port
        self.servicer = servicer
        self.responder = responder
        self.batcher = batcher
        self.log_sink = log_sink
        self._server, self._health, self._config, self._routing = server, health_servicer, config, routing
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._unobserve: list[Callable[[], None]] = []

    def start(self) -> None:
        """Start the batcher and the server, then report SERVING."""
        metrics.declare()
        self._unobserve = [metrics.UNLOGGED.add(lambda: [(self.log_sink.unlogged(), {})]),
                           metrics.TRAFFIC_SHARE.add(partial(metrics.traffic_shares, self._routing))]
        self.batcher.start()
        self._server.start()
        for name in ("", INFERENCE):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        threading.Thread(target=self._watch_log, name="log-health", daemon=True).start()
        log.info("inference server listening on port %d", self.port)

    def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING first, refuse new calls, let in-flight calls finish (up to grace_s), flush the log.

        Two phases. First our own handler refuses new calls with UNAVAILABLE (a status every client
        knows to retry elsewhere) while admitted calls finish, until none is in flight and clients have
        gone quiet. Only then is gRPC itself stopped: stopping it at once would have gRPC cancel calls it
        had received but not yet handed to us (the client would see an ambiguous CANCELLED), and open
        Health.Watch streams would hold the stop for the whole grace period.
        """
        with self._stop_lock:
            if self._stopped.is_set():
                return
            self._health.enter_graceful_shutdown()
            grace = self._config.drain_grace_s if grace_s is None else grace_s
            deadline = time.monotonic() + grace
            self.servicer.drain()
            while not self.servicer.settled(DRAIN_QUIET_S) and time.monotonic() < deadline:
                time.sleep(0.01)
            self._server.stop(max(0.0, min(DRAIN_FINAL_GRACE_S, deadline - time.monotonic()))).wait()
            self.batcher.stop()
            self.log_sink.close()
            for unobserve in self._unobserve:
                unobserve()
            self._stopped.set()
        log.info("inference server stopped")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until stop() has finished; True when it has."""
        return self._stopped.wait(timeout_s)

    def serve_until_signal(self) -> None:
        """Start, then stop gracefully on SIGTERM or SIGINT (standalone use; ServiceRuntime calls stop())."""
        asked = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: asked.set())
        self.start()
        asked.wait()
        log.info("signal received: draining")
        self.stop()

    def stats(self) -> ServingStats:
        """The server's counters now."""
        s, b = self.servicer, self.batcher
        return ServingStats(s.started, s.answered, s.failed, b.queued, b.batches, b.items, self.log_sink.unlogged(),
                            self.responder.mirror_skipped)

    def unlogged_predictions(self) -> int:
        """Predictions the inference log could not deliver (for ListDeploymentsResponse)."""
        return self.log_sink.unlogged()

    def _watch_log(self) -> None:
        while not self._stopped.wait(1.0):
            ok = self.log_sink.healthy()
            status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            self._health.set(INFERENCE_LOG_HEALTH, status)


def build_server(settings: Settings, routing: RoutingTable, pool: ServingPool, observer: ServedObserver, log_sink: LogSink,
                 admin_servicer: object | None = None, config: ServingConfig | None = None,
                 address: str | None = None, guard: Guard | None = None,
                 tenants: TenantDirectory | None = None) -> InferenceServer:
    """Wire batcher, responder, servicers, auth, health and reflection into a server (not started).

    Without `tenants` no goal has a known tenant, so only credentials of every tenant (`*`) may predict.
    """
    guard = guard or Guard(settings, "deployer")
    config = config or getattr(settings, "serving", None) or ServingConfig()
    batcher = MicroBatcher(pool, config)
    responder = Responder(routing, pool, batcher, observer, log_sink, config, settings.inference_log_retention_days)
    options = [("grpc.max_receive_message_length", config.max_message_bytes),
               ("grpc.max_send_message_length", config.max_message_bytes), ("grpc.so_reuseport", 0)]
    server = grpc.server(ThreadPoolExecutor(config.grpc_threads, thread_name_prefix="grpc"),
                         interceptors=[guard.interceptor()], options=options,
                         maximum_concurrent_rpcs=config.max_concurrent_rpcs)
    servicer = InferenceServicer(responder, guard, tenants or TenantDirectory())
    server.add_generic_rpc_handlers([service_handler(INFERENCE, servicer, tolerant=True)])
    names = [INFERENCE, health.SERVICE_NAME, reflection.SERVICE_NAME]
    if admin_servicer is not None:
        server.add_generic_rpc_handlers([service_handler(ADMIN, admin_servicer)])
        names.append(ADMIN)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", INFERENCE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(names, server)
    port = bind(server, address or settings.deployer_address, settings)
    return InferenceServer(server, port, batcher, servicer, responder, health_servicer, log_sink, config, routing)
