"""The monitor's gRPC Query service (lineage, ledger verification, ledger head), bearer-token protected."""

from __future__ import annotations

import hmac
import logging
from concurrent import futures
from typing import NoReturn

import grpc
from tuneline.monitor.v1 import query_pb2 as q
from tuneline.monitor.v1 import query_pb2_grpc as q_grpc

from services.kernel.errors import NotFound, TunelineError
from services.kernel.store import Store
from services.monitor import audit
from services.monitor.lineage import Lineage
from services.monitor.settings import MonitorSettings

log = logging.getLogger(__name__)


def _authorised(context: grpc.ServicerContext, tokens: list[bytes]) -> None:
    header = dict(context.invocation_metadata()).get("authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token: send 'authorization: Bearer <token>'")
    given, matched = header[7:].strip().encode(), False
    for token in tokens:
        matched |= hmac.compare_digest(given, token)
    if not matched:
        log.warning("monitor query refused: unknown token from %s", context.peer())
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "unknown token")


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("grpc's ServicerContext.abort always raises")


class QueryServicer(q_grpc.QueryServicer):
    """Answers lineage and ledger questions from the monitor's store."""

    def __init__(self, settings: MonitorSettings, store: Store, lineage: Lineage) -> None:
        self.settings, self.store, self.lineage = settings, store, lineage
        self.tokens = [t.encode() for t in settings.grpc_tokens if t]

    def Lineage(self, request: q.LineageRequest, context: grpc.ServicerContext) -> q.LineageResponse:
        _authorised(context, self.tokens)
        try:
            return self.lineage.of(request.id)
        except NotFound as err:
            _abort(context, grpc.StatusCode.NOT_FOUND, str(err))
        except TunelineError as err:
            _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(err))

    def VerifyLedger(self, request: q.VerifyLedgerRequest, context: grpc.ServicerContext) -> q.VerifyLedgerResponse:
        _authorised(context, self.tokens)
        v = audit.verify_ledger(self.store, audit.read_exported_head(audit.head_file(self.settings.state_dir)))
        return q.VerifyLedgerResponse(ok=v.ok, records=v.records, first_bad_sequence=v.first_bad_seq, problem=v.problem,
                                      head_hash=v.head.hash)

    def LedgerHead(self, request: q.LedgerHeadRequest, context: grpc.ServicerContext) -> q.LedgerHeadResponse:
        _authorised(context, self.tokens)
        head = audit.current_head(self.store)
        return q.LedgerHeadResponse(sequence=head.seq, head_hash=head.hash)


class QueryServer:
    """The gRPC server as a runtime background component."""

    def __init__(self, settings: MonitorSettings, servicer: QueryServicer) -> None:
        self.settings, self.servicer = settings, servicer
        self.server: grpc.Server | None = None

    def start(self) -> None:
        """Listen on settings.monitor_address."""
        self.settings.require_safe_bind(self.settings.monitor_address)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        # The generated gRPC module has no annotations (and no .pyi stub).
        q_grpc.add_QueryServicer_to_server(self.servicer, self.server)  # type: ignore[no-untyped-call]
        self.server.add_insecure_port(self.settings.monitor_address)
        self.server.start()

    def stop(self) -> None:
        """Stop, letting in-flight queries finish for up to 5 s."""
        if self.server is not None:
            self.server.stop(5).wait()
