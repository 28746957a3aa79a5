"""TLS for Tuneline's gRPC servers and clients, from settings, in one place.

Servers (the deployer's Inference/Admin, the monitor's Query): TLS when grpc_tls_cert and grpc_tls_key
are set, mutual TLS when grpc_tls_client_ca is set too (clients must present a certificate it signed).
Clients (CLI, load generator, status, demo): TLS when grpc_tls_ca is set (the CA that signed the
servers' certificates), presenting grpc_tls_client_cert/grpc_tls_client_key when set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from services.kernel.errors import ConfigError
from services.kernel.settings import Settings

ChannelOptions = Sequence[tuple[str, int | str]]


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path} ({setting}): {err.strerror}", hint=f"check {setting}") from None


def bind(server: grpc.Server, address: str, settings: Settings) -> int:
    """Listen on `address` (TLS/mTLS as configured); the port bound. Refuses the dev token off loopback."""
    settings.require_safe_bind(address)
    if settings.grpc_tls_cert and settings.grpc_tls_key:
        ca = _read(settings.grpc_tls_client_ca, "TUNELINE_GRPC_TLS_CLIENT_CA") if settings.grpc_tls_client_ca else None
        creds = grpc.ssl_server_credentials([(_read(settings.grpc_tls_key, "TUNELINE_GRPC_TLS_KEY"),
                                              _read(settings.grpc_tls_cert, "TUNELINE_GRPC_TLS_CERT"))],
                                            root_certificates=ca, require_client_auth=ca is not None)
        secure_port: int = server.add_secure_port(address, creds)
        return secure_port
    if settings.grpc_tls_cert or settings.grpc_tls_key:
        raise ConfigError("TLS needs both TUNELINE_GRPC_TLS_CERT and TUNELINE_GRPC_TLS_KEY; only one is set")
    port: int = server.add_insecure_port(address)
    return port


def channel(settings: Settings, address: str, options: ChannelOptions = ()) -> grpc.Channel:
    """A client channel to `address`: TLS when grpc_tls_ca is set, else plaintext."""
    if settings.grpc_tls_ca is None:
        if settings.grpc_tls_client_cert or settings.grpc_tls_client_key:
            raise ConfigError("a client certificate is set but TUNELINE_GRPC_TLS_CA is not",
                              hint="set TUNELINE_GRPC_TLS_CA to the CA that signed the server's certificate")
        return grpc.insecure_channel(address, options=list(options))
    cert = _read(settings.grpc_tls_client_cert, "TUNELINE_GRPC_TLS_CLIENT_CERT") if settings.grpc_tls_client_cert else None
    key = _read(settings.grpc_tls_client_key, "TUNELINE_GRPC_TLS_CLIENT_KEY") if settings.grpc_tls_client_key else None
    creds = grpc.ssl_channel_credentials(root_certificates=_read(settings.grpc_tls_ca, "TUNELINE_GRPC_TLS_CA"),
                                         private_key=key, certificate_chain=cert)
    return grpc.secure_channel(address, creds, options=list(options))


def bearer(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries the client's token."""
    return (("authorization", f"Bearer {settings.grpc_token}"),)
