"""Scoped bearer-token authorization of gRPC calls, and the audit trail of every refusal.

The interceptor authenticates the token and checks the method's scope before the request is parsed
(bytes from an unauthenticated caller stay bytes); the servicers check the tenant of the goal a call
names with `Guard.check_tenant`, once they know the goal. Status codes: UNAUTHENTICATED for a missing,
malformed or expired token; PERMISSION_DENIED for an unknown token, a missing scope or another
tenant's goal. Every refusal is appended to state_dir/audit/access.jsonl (time, service, method, peer,
credential name when known, status, reason; never the token) and logged on `tuneline.audit.auth`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from services.kernel.credentials import ALL_TENANTS, Authenticator, Principal, Refused, authorize, check_tenant
from services.kernel.settings import Settings

log = logging.getLogger("tuneline.audit.auth")
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class _Call:
    principal: Principal
    method: str
    peer: str


_CURRENT: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("tuneline_grpc_call", default=None)


def current_principal() -> Principal | None:
    """The principal of the call being handled on this thread (None outside an authorized call)."""
    call = _CURRENT.get()
    return call.principal if call else None


def status_of(refused: Refused) -> grpc.StatusCode:
    """The gRPC status of a refusal."""
    return grpc.StatusCode.UNAUTHENTICATED if refused.unauthenticated else grpc.StatusCode.PERMISSION_DENIED


class AccessAudit:
    """Appends one JSON line per refused call (thread-safe, flushed per line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def refused(self, service: str, method: str, peer: str, refusal: Refused) -> None:
        """Record a refusal."""
        record = {"time": datetime.now(UTC).isoformat(), "service": service, "method": method, "peer": peer,
                  "principal": refusal.principal, "status": status_of(refusal).name, "reason": refusal.reason}
        log.warning("auth refused: service=%s method=%s peer=%s principal=%s status=%s reason=%s", service, method,
                    peer, refusal.principal or "-", record["status"], refusal.reason)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def audit_path(settings: Settings) -> Path:
    """Where the access audit of this state folder is."""
    return settings.state_dir / "audit" / "access.jsonl"


class Guard:
    """Authentication, scopes and tenants for one server; `interceptor()` goes on the grpc.server."""

    def __init__(self, settings: Settings, service: str) -> None:
        self.service = service
        self.authenticator = Authenticator(settings)
        self.audit = AccessAudit(audit_path(settings))

    def interceptor(self) -> grpc.ServerInterceptor:
        """The server interceptor that authenticates and authorizes every protected call."""
        return _Interceptor(self)

    def check_tenant(self, tenant: str | None, what: str) -> None:
        """Within a call: audit and raise Refused unless its principal acts for `tenant` (None: an unknown goal)."""
        call = _CURRENT.get()
        if call is None:
            return  # a servicer used without the interceptor (in-process tests of the servicer alone)
        try:
            check_tenant(call.principal, tenant, what)
        except Refused as refusal:
            self.audit.refused(self.service, call.method, call.peer, refusal)
            raise

    def visible(self, tenant: str | None) -> bool:
        """Within a call: whether its principal may see something of `tenant` (for filtering lists)."""
        call = _CURRENT.get()
        if call is None:
            return True
        if tenant is None:
            return call.principal.tenant == ALL_TENANTS
        return call.principal.acts_for(tenant)


class _Interceptor(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type information: its classes are Any
    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
                          details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method: str = details.method
        if method.startswith(OPEN_PREFIXES):
            return continuation(details)
        header = next((v for k, v in details.invocation_metadata or () if k == "authorization"), None)
        try:
            principal = self._guard.authenticator.authenticate(header if isinstance(header, str) else None)
            authorize(principal, method)
        except Refused as refusal:
            return self._refusal(method, refusal)
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # unknown method (gRPC answers UNIMPLEMENTED); no streaming method is protected
        inner = handler.unary_unary

        def authorized(request: Any, context: grpc.ServicerContext) -> Any:
            token = _CURRENT.set(_Call(principal, method, context.peer()))
            try:
                return inner(request, context)
            finally:
                _CURRENT.reset(token)
        return grpc.unary_unary_rpc_method_handler(authorized, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)

    def _refusal(self, method: str, refusal: Refused) -> grpc.RpcMethodHandler:
        def refuse(_request: object, context: grpc.ServicerContext) -> None:
            self._guard.audit.refused(self._guard.service, method, context.peer(), refusal)
            context.abort(status_of(refusal), refusal.reason)

        # The request is never parsed: bytes from an unauthorized caller stay bytes.
        return grpc.unary_unary_rpc_method_handler(refuse, request_deserializer=None, response_serializer=None)
