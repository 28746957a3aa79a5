"""What `tuneline up --secure` and `tuneline demo --secure` add beside the secure broker: mutual TLS and a
scoped token on both gRPC servers, and artifacts sealed at rest.

Under state_dir/tls: a local CA, one server certificate for both servers (localhost, 127.0.0.1), a
client certificate for the operator's tools, and client.env (mode 0600) with the TUNELINE_* lines a
shell sources to use the CLI against the secured stack. The development token is switched off: the
servers accept only credentials from the credentials file, where a `local-operator` token of every
tenant with every scope is issued (afresh at each start, valid for a day). The at-rest key is the
configured TUNELINE_AT_REST_KEY_FILE, or state_dir/keys/at-rest.key made at the first secure start.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from services.kernel import pki
from services.kernel.credentials import ALL_TENANTS, SCOPES, credentials_path, issue, revoke
from services.kernel.errors import ConfigError
from services.kernel.sealing import init_key_file
from services.kernel.settings import Settings
from services.kernel.signing import keys_dir

OPERATOR = "local-operator"
S = TypeVar("S", bound=Settings)
_ENV_FIELDS = ("grpc_tls_cert", "grpc_tls_key", "grpc_tls_client_ca", "grpc_tls_ca", "grpc_tls_client_cert",
               "grpc_tls_client_key", "grpc_token")


def secure_grpc(settings: S) -> S:
    """These settings with mTLS on both servers and clients and a fresh operator token; writes client.env."""
    folder = settings.state_dir / "tls"
    ca = pki.ensure_ca(folder)
    server = pki.ensure_leaf(ca, folder, "server")
    client = pki.ensure_leaf(ca, folder, "operator", client=True)
    path = credentials_path(settings)
    revoke(path, OPERATOR)
    now = datetime.now(UTC).replace(microsecond=0)
    token, _ = issue(path, OPERATOR, ALL_TENANTS, list(SCOPES), now + timedelta(days=1), now)
    secured = settings.replace(grpc_tls_cert=server.cert, grpc_tls_key=server.key, grpc_tls_client_ca=ca.cert,
                               grpc_tls_ca=ca.cert, grpc_tls_client_cert=client.cert, grpc_tls_client_key=client.key,
                               grpc_tokens=[], grpc_token=token)
    env = folder / "client.env"
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(f"export {k}={v}\n" for k, v in grpc_env(secured).items()))
    return secured


def client_settings(settings: S) -> S:
    """These settings with the gRPC client side of the secure mode (state_dir/tls/client.env), when it is on and
    no TUNELINE_GRPC_TLS_CA was given."""
    env = settings.state_dir / "tls" / "client.env"
    if settings.grpc_tls_ca or not env.is_file():
        return settings
    fields = dict(line.removeprefix("export TUNELINE_").split("=", 1) for line in env.read_text(encoding="utf-8").splitlines()
                  if line.startswith("export TUNELINE_"))
    return settings.replace(**{k.lower(): json.loads(v) if k == "GRPC_TOKENS" else v for k, v in fields.items()})


def plaintext(settings: Settings) -> None:
    """The secure mode is off for this state folder: its stale client settings go."""
    (settings.state_dir / "tls" / "client.env").unlink(missing_ok=True)


def sealed_at_rest(settings: S) -> S:
    """These settings with an at-rest key: the configured file, or state_dir/keys/at-rest.key, made once."""
    if settings.at_rest_key_file:
        return settings
    path = keys_dir(settings) / "at-rest.key"
    if not path.exists():
        try:
            init_key_file(path)
        except ConfigError:  # made meanwhile by another start: that key is the one
            pass
    return settings.replace(at_rest_key_file=path)


def grpc_env(settings: Settings) -> dict[str, str]:
    """The environment that carries these settings' gRPC security to a child process (empty when plaintext)."""
    env = {f"TUNELINE_{name.upper()}": str(getattr(settings, name)) for name in _ENV_FIELDS
           if getattr(settings, name) and name != "grpc_token"}
    if env:
        env["TUNELINE_GRPC_TOKEN"] = settings.grpc_token
        env["TUNELINE_GRPC_TOKENS"] = json.dumps(settings.grpc_tokens)
    return env
