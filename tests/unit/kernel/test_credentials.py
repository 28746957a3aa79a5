"""Scoped credentials: token parsing, hashes on disk, expiry, scopes, tenants (pure logic, no gRPC)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import pytest

from services.kernel import credentials as c
from services.kernel.errors import ConfigError
from services.kernel.settings import Settings

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path, grpc_tokens=["first-token", "sha256:" + c.token_hash("hashed-token")])


def _refusal(auth: c.Authenticator, header: str | None) -> c.Refused:
    with pytest.raises(c.Refused) as err:
        auth.authenticate(header)
    return err.value


@pytest.mark.parametrize("header, unauthenticated", [
    (None, True), ("", True), ("first-token", True), ("Basic Zmlyc3Q=", True), ("Bearer ", True),
    ("Bearer wrong", False), ("Bearer first-token-x", False), ("Bearer first-toke", False),
])
def test_bad_headers_are_refused_with_the_right_kind(settings, header, unauthenticated):
    assert _refusal(c.Authenticator(settings), header).unauthenticated is unauthenticated


def test_static_tokens_clear_or_hashed_have_every_scope_on_every_tenant(settings):
    auth = c.Authenticator(settings)
    for header in ("Bearer first-token", "bearer hashed-token"):
        p = auth.authenticate(header)
        assert p.tenant == c.ALL_TENANTS and p.scopes == set(c.SCOPES)


def test_no_configured_tokens_lets_nobody_in(tmp_path):
    assert not _refusal(c.Authenticator(Settings(state_dir=tmp_path, grpc_tokens=[])), "Bearer anything").unauthenticated


def test_issued_tokens_are_stored_as_hashes_only(settings):
    path = c.credentials_path(settings)
    token, cred = c.issue(path, "bank-app", "acme", ["predict"], None, NOW)
    text = path.read_text()
    assert token not in text and cred.sha256 in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    p = c.Authenticator(settings).authenticate(f"Bearer {token}")
    assert (p.name, p.tenant, p.scopes) == ("bank-app", "acme", frozenset({"predict"}))


def test_an_expired_token_is_unauthenticated_and_named(settings):
    path = c.credentials_path(settings)
    token, _ = c.issue(path, "short", "acme", ["predict"], NOW + timedelta(hours=1), NOW)
    assert c.Authenticator(settings, clock=lambda: NOW).authenticate(f"Bearer {token}").name == "short"
    late = _refusal(c.Authenticator(settings, clock=lambda: NOW + timedelta(hours=1)), f"Bearer {token}")
    assert late.unauthenticated and late.principal == "short" and "expired" in late.reason


def test_revoking_takes_effect_without_a_restart(settings, monkeypatch):
    path = c.credentials_path(settings)
    token, _ = c.issue(path, "gone-soon", "acme", ["audit"], None, NOW)
    auth = c.Authenticator(settings)
    assert auth.authenticate(f"Bearer {token}").name == "gone-soon"
    assert c.revoke(path, "gone-soon") and not c.revoke(path, "gone-soon")
    monkeypatch.setattr(c, "_RELOAD_EVERY_S", 0.0)
    assert not _refusal(auth, f"Bearer {token}").unauthenticated


def test_duplicate_names_unknown_scopes_and_bad_tenants_are_config_errors(settings):
    path = c.credentials_path(settings)
    c.issue(path, "one", "acme", ["predict"], None, NOW)
    for name, tenant, scopes in (("one", "acme", ["predict"]), ("two", "acme", ["admin"]), ("three", "Bad Tenant", ["predict"]),
                                 ("four", "acme", [])):
        with pytest.raises(ConfigError):
            c.issue(path, name, tenant, scopes, None, NOW)
    assert [x.name for x in c.read_credentials(path).credentials] == ["one"]


def test_a_malformed_file_is_a_config_error_naming_it(settings):
    path = c.credentials_path(settings)
    path.write_text(json.dumps({"credentials": [{"name": "x"}]}))
    with pytest.raises(ConfigError, match=str(path)):
        c.Authenticator(settings)


@pytest.mark.parametrize("text, expected", [
    ("30d", NOW + timedelta(days=30)), ("12h", NOW + timedelta(hours=12)), ("90m", NOW + timedelta(minutes=90)),
    ("never", None), ("2027-01-01T00:00:00", datetime(2027, 1, 1, tzinfo=UTC)),
])
def test_expiry_forms(text, expected):
    assert c.parse_expiry(text, NOW) == expected


def test_an_unreadable_expiry_is_a_config_error():
    with pytest.raises(ConfigError, match="30 days"):
        c.parse_expiry("30 days", NOW)


PREDICT = c.Principal("p", "acme", frozenset({"predict"}))
EVERYTHING_ACME = c.Principal("a", "acme", frozenset(c.SCOPES))
PLATFORM = c.Principal("root", c.ALL_TENANTS, frozenset({"audit"}))


@pytest.mark.parametrize("principal, method, allowed", [
    (PREDICT, "/tuneline.serving.v1.Inference/Predict", True),
    (PREDICT, "/tuneline.serving.v1.Inference/PredictBatch", True),
    (PREDICT, "/tuneline.serving.v1.Admin/Rollback", False),
    (PREDICT, "/tuneline.serving.v1.Admin/ListDeployments", False),
    (PREDICT, "/tuneline.monitor.v1.Query/Lineage", False),
    (EVERYTHING_ACME, "/tuneline.monitor.v1.Query/Lineage", True),
    (EVERYTHING_ACME, "/tuneline.monitor.v1.Query/VerifyLedger", False),
    (PLATFORM, "/tuneline.monitor.v1.Query/VerifyLedger", True),
    (PLATFORM, "/tuneline.serving.v1.Inference/Predict", False),
    (PLATFORM, "/tuneline.serving.v1.Admin/Unknown", False),
])
def test_scopes(principal, method, allowed):
    if allowed:
        c.authorize(principal, method)
    else:
        with pytest.raises(c.Refused):
            c.authorize(principal, method)


def test_tenants():
    c.check_tenant(PREDICT, "acme", "goal 'g'")
    c.check_tenant(PLATFORM, None, "goal 'unknown'")
    for tenant in ("globex", None):
        with pytest.raises(c.Refused, match="goal 'g'"):
            c.check_tenant(PREDICT, tenant, "goal 'g'")
