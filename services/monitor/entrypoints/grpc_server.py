"""The monitor's gRPC Query service (lineage, ledger verification, ledger head), for the `audit` scope,
and beside it the Registry service (services.monitor.entrypoints.registry_server).

The interceptor (services.kernel.grpc_auth) authenticates every call and checks its scope; the ledger
as a whole (VerifyLedger, LedgerHead) is open to credentials of every tenant only, and a lineage only
to a credential of the tenant of every goal on the chain. TLS/mTLS as the deployer's (grpc_tls).
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import NoReturn

import grpc
from tuneline.monitor.v1 import query_pb2 as q
from tuneline.monitor.v1 import query_pb2_grpc as q_grpc
from tuneline.monitor.v1 import registry_pb2_grpc as r_grpc

from services.kernel.credentials import Refused
from services.kernel.errors import NotFound, TunelineError
from services.kernel.goals import latest_goal
from services.kernel.grpc_auth import Guard, current_principal, status_of
from services.kernel.grpc_tls import bind
from services.kernel.store import Store
from services.monitor import alerting, audit
from services.monitor.entrypoints.registry_server import RegistryServicer
from services.monitor.lineage import Lineage
from services.monitor.settings import MonitorSettings

log = logging.getLogger(__name__)


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("grpc's ServicerContext.abort always raises")


class QueryServicer(q_grpc.QueryServicer):
    """Answers lineage and ledger questions from the monitor's store."""

    def __init__(self, settings: MonitorSettings, store: Store, lineage: Lineage, guard: Guard | None = None) -> None:
        self.settings, self.store, self.lineage = settings, store, lineage
        self.guard = guard or Guard(settings, "monitor")

    def Lineage(self, request: q.LineageRequest, context: grpc.ServicerContext) -> q.LineageResponse:
        what = f"the lineage of {request.id!r}"
        try:
            chain = self.lineage.of(request.id)
        except NotFound as err:
            self._check_tenants(context, [], what)  # another tenant's caller learns nothing, not even "unknown"
            _abort(context, grpc.StatusCode.NOT_FOUND, str(err))
        except TunelineError as err:
            _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(err))
        self._check_tenants(context, sorted({s.facts["goal"] for s in chain.steps if "goal" in s.facts}), what)
        return chain

    def _check_tenants(self, context: grpc.ServicerContext, goals: list[str], what: str) -> None:
        """Refuse unless the caller acts for the tenant of every goal (a chain naming no goal: tenant `*` only)."""
        principal = current_principal()
        if principal is None or principal.tenant == "*":
            return
        with self.store.session() as session:
            tenants = [(g, latest_goal(session, g)) for g in goals]
        try:
            if not tenants:
                self.guard.check_tenant(None, what)
            for name, goal in tenants:
                self.guard.check_tenant(goal.tenant if goal else None, f"{what} (goal {name!r})")
        except Refused as refusal:
            _abort(context, status_of(refusal), refusal.reason)

    def VerifyLedger(self, request: q.VerifyLedgerRequest, context: grpc.ServicerContext) -> q.VerifyLedgerResponse:
        v = audit.verify_ledger(self.store, audit.read_exported_head(audit.head_file(self.settings.state_dir)))
        return q.VerifyLedgerResponse(ok=v.ok, records=v.records, first_bad_sequence=v.first_bad_seq, problem=v.problem,
                                      head_hash=v.head.hash)

    def LedgerHead(self, request: q.LedgerHeadRequest, context: grpc.ServicerContext) -> q.LedgerHeadResponse:
        head = audit.current_head(self.store)
        return q.LedgerHeadResponse(sequence=head.seq, head_hash=head.hash)


    def ListIncidents(self, request: q.ListIncidentsRequest, context: grpc.ServicerContext) -> q.ListIncidentsResponse:
        principal = current_principal()
        with self.store.session() as session:
            found = alerting.incidents(session, request.limit or 50, request.open_only)
            tenants = {g: latest_goal(session, g) for g in {i.goal for i in found}}
            counts = alerting.delivery_counts(session, [i.key for i in found])
        if principal is not None and principal.tenant != "*":
            found = [i for i in found if (goal := tenants.get(i.goal)) is not None and goal.tenant == principal.tenant]
        return q.ListIncidentsResponse(incidents=[
            q.Incident(key=i.key, kind=i.kind, goal=i.goal, severity=i.severity, summary=i.summary, details=i.details,
                       report_uri=i.report_uri, trace_id=i.trace_id, alerts=i.alerts, status=i.status,
                       opened_unix_ms=i.opened_ms, resolved_unix_ms=i.resolved_ms or 0,
                       deliveries_pending=counts.get(i.key, (0, 0))[0], deliveries_failed=counts.get(i.key, (0, 0))[1])
            for i in found])


    def ListDriftWindows(self, request: q.ListDriftWindowsRequest, context: grpc.ServicerContext) -> q.ListDriftWindowsResponse:
        import sqlalchemy as sa

        from services.monitor.store import WindowVerdictRow

        self._check_tenants(context, [request.goal], f"drift windows of goal {request.goal!r}")
        query = (sa.select(WindowVerdictRow).where(WindowVerdictRow.goal_name == request.goal)
                 .order_by(WindowVerdictRow.index.desc()).limit(request.limit or 20))
        if request.drifted_only:
            query = query.where(WindowVerdictRow.drifted.is_(True))
        with self.store.session() as session:
            rows = session.scalars(query).all()
            return q.ListDriftWindowsResponse(windows=[
                q.DriftWindow(adapter_digest=r.adapter_digest, index=r.index, drifted=r.drifted, drift_share=r.drift_share,
                              verdict_digest=r.verdict_digest, verdict_uri=r.verdict_uri, report_digest=r.report_digest,
                              report_uri=r.report_uri, span_ms=r.span_ms) for r in rows])


class QueryServer:
    """The gRPC server as a runtime background component."""

    def __init__(self, settings: MonitorSettings, servicer: QueryServicer, registry: RegistryServicer | None = None) -> None:
        self.settings, self.servicer, self.registry = settings, servicer, registry
        self.server: grpc.Server | None = None
        self.port = 0

    def start(self) -> None:
        """Listen on settings.monitor_address (TLS/mTLS when configured)."""
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[self.servicer.guard.interceptor()])
        # The generated gRPC module has no annotations (and no .pyi stub).
        q_grpc.add_QueryServicer_to_server(self.servicer, self.server)  # type: ignore[no-untyped-call]
        if self.registry is not None:
            r_grpc.add_RegistryServicer_to_server(self.registry, self.server)  # type: ignore[no-untyped-call]
        self.port = bind(self.server, self.settings.monitor_address, self.settings)
        self.server.start()

    def stop(self) -> None:
        """Stop, letting in-flight queries finish for up to 5 s."""
        if self.server is not None:
            self.server.stop(5).wait()
