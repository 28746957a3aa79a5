"""Scoped gRPC credentials: who may call which method, for which tenant, until when.

A credential is a bearer token's sha256 (never the token), a name for the audit trail, a tenant
(`*`: every tenant), scopes and an optional expiry. Scopes:

    predict   Inference.Predict, Inference.PredictBatch       on the credential's tenant's goals
    operate   Admin.ListDeployments, Admin.Rollback           on the credential's tenant's goals
              Query.ListIncidents, Query.ListDriftWindows     incidents and drift windows of the tenant's goals
    audit     Query.Lineage                                   of chains of the credential's tenant's goals
              Query.VerifyLedger, Query.LedgerHead            the whole ledger: tenant `*` only

Credentials live in a JSON file (settings.grpc_credentials_file, default state_dir/credentials.json)
written by `tuneline tokens issue`, which prints the token once. Servers re-read the file when it
changes, so an issued, revoked or expired token takes effect without a restart. Tokens configured in
clear in TUNELINE_GRPC_TOKENS (the development token by default) have every scope on every tenant;
an entry of that list may be a `sha256:<hex>` hash instead of a token.

This module is pure logic (no gRPC): services.kernel.grpc_auth applies it to calls.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from services.kernel.errors import ConfigError, TunelineError
from services.kernel.goal import TENANT_PATTERN
from services.kernel.settings import Settings
from services.kernel.values import Value

Scope = Literal["predict", "operate", "audit"]
SCOPES: tuple[Scope, ...] = ("predict", "operate", "audit")
ALL_TENANTS = "*"
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
_RELOAD_EVERY_S = 1.0

# What each protected method needs. A method not named here is refused (fail-closed); the health and
# reflection services are open (services.kernel.grpc_auth.OPEN_PREFIXES).
METHOD_SCOPES: dict[str, Scope] = {
    "/tuneline.serving.v1.Inference/Predict": "predict",
    "/tuneline.serving.v1.Inference/PredictBatch": "predict",
    "/tuneline.serving.v1.Admin/ListDeployments": "operate",
    "/tuneline.serving.v1.Admin/Rollback": "operate",
    "/tuneline.serving.v1.Admin/Approve": "operate",
    "/tuneline.serving.v1.Admin/Reject": "operate",
    "/tuneline.serving.v1.Admin/Hold": "operate",
    "/tuneline.serving.v1.Admin/Resume": "operate",
    "/tuneline.monitor.v1.Query/Lineage": "audit",
    "/tuneline.monitor.v1.Query/VerifyLedger": "audit",
    "/tuneline.monitor.v1.Query/LedgerHead": "audit",
    "/tuneline.monitor.v1.Query/ListIncidents": "operate",
    "/tuneline.monitor.v1.Query/ListDriftWindows": "operate",
    **{f"/tuneline.monitor.v1.Registry/{m}": "audit"
       for m in ("ListGoals", "ListDatasets", "ListRuns", "ListEvals", "ListModels", "CompareRuns")},
}
# Methods about every tenant at once: only a credential of tenant `*` may call them.
PLATFORM_WIDE = frozenset({"/tuneline.monitor.v1.Query/VerifyLedger", "/tuneline.monitor.v1.Query/LedgerHead"})


class Refused(TunelineError):
    """A call the credentials do not allow. `unauthenticated`: no valid identity; else: not permitted."""

    def __init__(self, reason: str, *, unauthenticated: bool = False, principal: str = "") -> None:
        super().__init__(reason)
        self.reason, self.unauthenticated, self.principal = reason, unauthenticated, principal


class Credential(Value):
    """One issued token, as stored: its hash, never the token."""

    name: str = Field(pattern=_NAME_PATTERN)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenant: str = Field(pattern=rf"{TENANT_PATTERN}|^\*$")
    scopes: tuple[Scope, ...] = Field(min_length=1)
    expires_at: datetime | None = None
    created_at: datetime

    @field_validator("expires_at", "created_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        """A time written without a zone is UTC (expiry is compared with an aware clock)."""
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


class CredentialFile(Value):
    """The credentials file: a version for future changes of its shape, and the credentials."""

    version: Literal[1] = 1
    credentials: tuple[Credential, ...] = ()


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    name: str
    tenant: str
    scopes: frozenset[str]

    def acts_for(self, tenant: str) -> bool:
        """Whether this principal may act on `tenant`'s goals."""
        return self.tenant == ALL_TENANTS or self.tenant == tenant


def token_hash(token: str) -> str:
    """The stored form of a token: its sha256, hex. Tokens are 256-bit random strings, so a plain hash suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe, prefixed so that leaked tokens are recognisable in scans."""
    return "tl_" + secrets.token_urlsafe(32)


def credentials_path(settings: Settings) -> Path:
    """Where the credentials file is (it may not exist)."""
    return settings.grpc_credentials_file or settings.state_dir / "credentials.json"


def read_credentials(path: Path) -> CredentialFile:
    """The credentials in `path`; an empty set when the file does not exist; ConfigError when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CredentialFile()
    try:
        return CredentialFile.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as err:
        raise ConfigError(f"the credentials file {path} is not valid: {err}",
                          hint="fix or remove it; `tuneline tokens issue` writes it") from None


def write_credentials(path: Path, creds: CredentialFile) -> None:
    """Replace the credentials file atomically (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(creds.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_expiry(text: str, now: datetime) -> datetime | None:
    """`30d`, `12h`, `90m`, `45s` from now, an ISO-8601 time, or `never` (None)."""
    text = text.strip()
    if text in ("", "never"):
        return None
    if m := _DURATION.match(text):
        return now + timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"cannot read the expiry {text!r}", hint="give a duration like 30d, 12h or 90m, an ISO-8601 time, "
                                                                  "or never") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def issue(path: Path, name: str, tenant: str, scopes: Sequence[str], expires_at: datetime | None,
          now: datetime | None = None) -> tuple[str, Credential]:
    """Add a credential to the file; returns the token (shown once, stored nowhere) and what was stored."""
    creds = read_credentials(path)
    if any(c.name == name for c in creds.credentials):
        raise ConfigError(f"a credential named {name!r} already exists in {path}",
                          hint="pick another name, or `tuneline tokens revoke` it first")
    token = new_token()
    try:
        cred = Credential(name=name, sha256=token_hash(token), tenant=tenant, scopes=tuple(dict.fromkeys(scopes)),  # type: ignore[arg-type]  # validated here
                          expires_at=expires_at, created_at=now or datetime.now(UTC))
    except ValidationError as err:
        raise ConfigError(f"cannot issue {name!r}: {err}", hint=f"scopes are {', '.join(SCOPES)}; a tenant is a goal "
                                                                "tenant name or * for every tenant") from None
    write_credentials(path, creds.replace(credentials=(*creds.credentials, cred)))
    return token, cred


def revoke(path: Path, name: str) -> bool:
    """Remove the named credential; False when there was none."""
    creds = read_credentials(path)
    kept = tuple(c for c in creds.credentials if c.name != name)
    if len(kept) == len(creds.credentials):
        return False
    write_credentials(path, creds.replace(credentials=kept))
    return True


@dataclass(frozen=True)
class _Entry:
    sha256: bytes
    principal: Principal
    expires_at: datetime | None


class Authenticator:
    """Turns a bearer token into a Principal, or refuses it; re-reads the credentials file when it changes."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._path = credentials_path(settings)
        self._clock = clock
        self._static = [_Entry(_static_hash(t), Principal(f"static-token-{i + 1}", ALL_TENANTS, frozenset(SCOPES)), None)
                        for i, t in enumerate(settings.grpc_tokens) if t]
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._seen: tuple[float, int] | None = None
        self._checked = 0.0
        self._reload(force=True)

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < _RELOAD_EVERY_S:
            return
        self._checked = now
        try:
            st = self._path.stat()
            seen: tuple[float, int] | None = (st.st_mtime, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen == self._seen and not force:
            return
        creds = read_credentials(self._path)
        self._entries = [_Entry(bytes.fromhex(c.sha256), Principal(c.name, c.tenant, frozenset(c.scopes)), c.expires_at)
                         for c in creds.credentials]
        self._seen = seen

    def authenticate(self, header: str | None) -> Principal:
        """The principal of an `authorization: Bearer <token>` header; Refused when missing, unknown or expired."""
        if not header or header[:7].lower() != "bearer " or not header[7:].strip():
            raise Refused("missing or malformed bearer token: send 'authorization: Bearer <token>' metadata",
                          unauthenticated=True)
        given = hashlib.sha256(header[7:].strip().encode()).digest()
        with self._lock:
            try:
                self._reload()
            except ConfigError:
                pass  # a half-written or broken file: keep the credentials last read (the error is logged at start)
            entries = self._static + self._entries
        found: _Entry | None = None
        for entry in entries:  # every entry is compared: timing does not say which one matched
            if hmac.compare_digest(given, entry.sha256):
                found = entry
        if found is None:
            raise Refused("unknown token")
        if found.expires_at is not None and self._clock() >= found.expires_at:
            raise Refused(f"the token {found.principal.name!r} expired at {found.expires_at.isoformat()}; ask for a new one",
                          unauthenticated=True, principal=found.principal.name)
        return found.principal


def _static_hash(entry: str) -> bytes:
    if entry.startswith("sha256:") and re.fullmatch(r"[0-9a-f]{64}", entry[7:]):
        return bytes.fromhex(entry[7:])
    return hashlib.sha256(entry.encode()).digest()


def authorize(principal: Principal, method: str) -> None:
    """Refused unless the principal's scopes allow `method` (tenants are checked where the goal is known)."""
    scope = METHOD_SCOPES.get(method)
    if scope is None:
        raise Refused(f"{method} is not open to any credential", principal=principal.name)
    if scope not in principal.scopes:
        raise Refused(f"the token {principal.name!r} lacks the {scope!r} scope that {method.rsplit('/', 1)[-1]} needs",
                      principal=principal.name)
    if method in PLATFORM_WIDE and principal.tenant != ALL_TENANTS:
        raise Refused(f"{method.rsplit('/', 1)[-1]} covers every tenant: it needs a credential of tenant '*', "
                      f"and {principal.name!r} is of tenant {principal.tenant!r}", principal=principal.name)


def check_tenant(principal: Principal, tenant: str | None, what: str) -> None:
    """Refused unless the principal acts for `tenant` (None: the goal is unknown, only tenant `*` may ask)."""
    if tenant is None and principal.tenant != ALL_TENANTS:
        raise Refused(f"{what} is not a goal of tenant {principal.tenant!r}", principal=principal.name)
    if tenant is not None and not principal.acts_for(tenant):
        raise Refused(f"{what} belongs to another tenant than {principal.tenant!r}", principal=principal.name)
