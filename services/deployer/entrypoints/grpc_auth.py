"""Bearer-token authentication for the deployer's gRPC services; health and reflection stay open.

Missing or malformed `authorization` metadata -> UNAUTHENTICATED; a well-formed but unknown token ->
PERMISSION_DENIED. Tokens are compared with hmac.compare_digest against every configured token (no
early exit, so timing does not reveal which token or how much of it matched). Every refusal is
audited in the log with the method and the peer, never the token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import grpc

audit = logging.getLogger("tuneline.audit.auth")
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_SCHEME = "bearer "


def token_status(header: str | None, tokens: list[bytes]) -> grpc.StatusCode | None:
    """None when the header carries a known token, else the status to refuse with."""
    if not header or not header[: len(_SCHEME)].lower() == _SCHEME or not header[len(_SCHEME):].strip():
        return grpc.StatusCode.UNAUTHENTICATED
    given = header[len(_SCHEME):].strip().encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token)
    return None if matched else grpc.StatusCode.PERMISSION_DENIED


class BearerTokenInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type information: its classes are Any
    """Refuses calls to protected services without a valid bearer token."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode() for t in tokens if t]

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
                          handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES):
            return continuation(handler_call_details)
        header = next((v for k, v in handler_call_details.invocation_metadata or () if k == "authorization"), None)
        status = token_status(header if isinstance(header, str) else None, self._tokens)
        if status is None:
            return continuation(handler_call_details)
        return _refusal(method, status)


def _refusal(method: str, status: grpc.StatusCode) -> grpc.RpcMethodHandler:
    reason = "missing or malformed bearer token" if status is grpc.StatusCode.UNAUTHENTICATED else "unknown token"

    def refuse(_request: object, context: grpc.ServicerContext) -> None:
        audit.warning("auth refused: method=%s peer=%s status=%s reason=%s", method, context.peer(), status.name, reason)
        context.abort(status, f"{reason}: send 'authorization: Bearer <token>' metadata")

    # The request is never parsed: bytes from an unauthenticated caller stay bytes.
    return grpc.unary_unary_rpc_method_handler(refuse, request_deserializer=None, response_serializer=None)
