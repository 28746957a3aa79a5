"""A client of the monitor's gRPC APIs for the command line of every service: the Registry (`tuneline
models`, `datasets`, `goals`, `runs`, `evals`) and the Query service (`lineage`, `audit`, `alerts`,
`drift`), with the configured token and TLS, and errors a person can act on."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import grpc
from tuneline.monitor.v1 import registry_pb2_grpc as r_grpc

from services.kernel import grpc_tls
from services.kernel.errors import ConfigError, NotFound, TransientError, TunelineError
from services.kernel.settings import Settings

T = TypeVar("T")
S = TypeVar("S")


def call(stub: Callable[[grpc.Channel], S], method: Callable[[S], Callable[..., T]], request: object, settings: Settings) -> T:
    """One call to the monitor (TransientError when it is not reachable)."""
    with grpc_tls.channel(settings, settings.monitor_address) as channel:
        try:
            return method(stub(channel))(request, metadata=grpc_tls.bearer(settings), timeout=120)
        except grpc.RpcError as err:
            raise _error(err, settings.monitor_address) from None


def ask(method: Callable[[r_grpc.RegistryStub], Callable[..., T]], request: object, settings: Settings | None = None) -> T:
    """One Registry call."""
    return call(r_grpc.RegistryStub, method, request, settings or Settings())


def _error(err: grpc.RpcError, address: str) -> TunelineError:
    code, detail = err.code(), err.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return TransientError(f"the monitor at {address} is not reachable", hint="start it with `tuneline monitor run`")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return ConfigError(f"the monitor refused the token: {detail}", hint="set TUNELINE_GRPC_TOKEN to a token it accepts")
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(detail)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ConfigError(detail)
    return TunelineError(f"monitor query failed ({code.name}): {detail}")


def local_store_exists(service: str) -> bool:
    """Whether this machine has the service's own store (a configured URL, or its SQLite file)."""
    settings = Settings()
    return bool(settings.store_url) or (settings.state_dir / "stores" / f"{service}.db").exists()


def when(unix_ms: int) -> str:
    """A registry time for people (UTC)."""
    return datetime.fromtimestamp(unix_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if unix_ms else "-"


def num(v: float, fmt: str = ".4f") -> str:
    """A number for a table; a dash for NaN (not measured)."""
    return format(v, fmt) if math.isfinite(v) else "—"
