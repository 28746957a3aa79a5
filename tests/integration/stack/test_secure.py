"""The secure mode beside the broker: mutual TLS and a scoped token, with the development token off, and an at-rest key."""

from __future__ import annotations

import stat

import grpc
import pytest

from services.kernel.blobs import BlobStore
from services.kernel.settings import DEV_TOKEN
from services.kernel.store import Store
from services.monitor.entrypoints.grpc_server import QueryServer, QueryServicer
from services.monitor.lineage import Lineage
from services.monitor.settings import MonitorSettings
from services.monitor.store import MIGRATIONS
from services.stack.secure import client_settings, grpc_env, plaintext, sealed_at_rest, secure_grpc
from tests.support import free_ports, ledger_head_status, wait_for

pytestmark = pytest.mark.integration


def test_secure_mode_serves_mtls_to_the_operator_only(tmp_path):
    [port] = free_ports(1)
    plain = MonitorSettings(state_dir=tmp_path / "state", monitor_address=f"127.0.0.1:{port}")
    secured = secure_grpc(plain)
    env = (secured.state_dir / "tls" / "client.env")
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and secured.grpc_token in env.read_text()
    assert grpc_env(plain) == {} and grpc_env(secured)["TUNELINE_GRPC_TOKENS"] == "[]"
    store = Store.open(secured, "monitor", MIGRATIONS)
    server = QueryServer(secured, QueryServicer(secured, store, Lineage(store, BlobStore(str(tmp_path / "artifacts")))))
    server.start()

    try:
        assert ledger_head_status(secured) == grpc.StatusCode.OK
        assert ledger_head_status(secured.replace(grpc_token=DEV_TOKEN)) == grpc.StatusCode.PERMISSION_DENIED
        assert ledger_head_status(plain) == grpc.StatusCode.UNAVAILABLE
        # A second start issues a new operator token; the server re-reads its credentials (within a
        # second) and the old token stops working.
        again = secure_grpc(plain)
        assert again.grpc_token != secured.grpc_token
        wait_for(lambda: ledger_head_status(again) == grpc.StatusCode.OK, 10, "the new operator token accepted")
        assert ledger_head_status(secured) == grpc.StatusCode.PERMISSION_DENIED
        # The CLI on this state folder picks the client side up by itself (`tuneline status` after `up --secure`).
        assert ledger_head_status(client_settings(plain)) == grpc.StatusCode.OK
        plaintext(plain)
        assert client_settings(plain) == plain
    finally:
        server.stop()
        store.dispose()


def test_secure_mode_seals_with_a_key_it_makes_once(tmp_path):
    plain = MonitorSettings(state_dir=tmp_path / "state")
    path = sealed_at_rest(plain).at_rest_key_file
    assert path == plain.state_dir / "keys" / "at-rest.key"
    key = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sealed_at_rest(plain).at_rest_key_file == path and path.read_bytes() == key  # a restart keeps the key
    mine = tmp_path / "mine.key"
    assert sealed_at_rest(plain.replace(at_rest_key_file=mine)).at_rest_key_file == mine  # a configured key wins
