"""R21: every kind of ledger tampering is detected and located; a clean ledger verifies."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.kernel import ledger
from services.kernel.events import Incoming
from services.monitor import audit
from services.monitor.store import LedgerRow

N = 12
_factory: list[Callable[..., Incoming[Message]]] = []


@pytest.fixture(autouse=True)
def _bind(make_incoming):
    _factory[:] = [make_incoming]


def _fill(store, n: int = N) -> None:
    incoming = _factory[0]
    with store.session() as s:
        for i in range(n):
            audit.append_event(incoming(ev.InferenceLogged(request_id=f"r{i}", goal_name="banking77", label="card"), offset=i), s)


def _verify(store, tmp_path, exported=True):
    return audit.verify_ledger(store, audit.read_exported_head(audit.head_file(tmp_path)) if exported else None)


def test_clean_ledger_verifies_and_head_matches(store, tmp_path):
    _fill(store)
    head = audit.export_head(store, audit.head_file(tmp_path))
    result = _verify(store, tmp_path)
    assert result.ok and result.records == N and result.first_bad_seq == -1
    assert result.head == head and head.seq == N


def test_chain_links_each_record_to_the_previous(store):
    _fill(store, 3)
    with store.session() as s:
        rows = s.execute(sa.select(LedgerRow).order_by(LedgerRow.seq)).scalars().all()
    assert rows[0].prev_hash == ledger.GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]


def _exec(store, sql: str, **params) -> None:
    with store.session() as s:
        s.execute(sa.text(sql), params)


def test_flipped_byte_in_payload_is_located(store, tmp_path):
    _fill(store)
    with store.session() as s:
        row = s.get(LedgerRow, 5)
        row.payload = bytes([row.payload[0] ^ 0x01]) + row.payload[1:]
    result = _verify(store, tmp_path)
    assert not result.ok and result.first_bad_seq == 5 and "payload" in result.problem


def test_flipped_byte_in_headers_is_located(store, tmp_path):
    _fill(store)
    with store.session() as s:
        row = s.get(LedgerRow, 7)
        row.headers_json = row.headers_json.replace("test/1", "test/2", 1)
    result = _verify(store, tmp_path)
    assert not result.ok and result.first_bad_seq == 7 and "modified" in result.problem


def test_deleted_record_is_located(store, tmp_path):
    _fill(store)
    _exec(store, "DELETE FROM monitor_ledger WHERE seq = 4")
    result = _verify(store, tmp_path)
    assert not result.ok and result.first_bad_seq == 4


def test_swapped_records_are_located(store, tmp_path):
    _fill(store)
    cols = ["topic", "partition", '"offset"', "ce_id", "ce_type", "headers_json", "payload_digest", "payload", "prev_hash", "hash"]
    # Swap every field but the sequence number (three steps because of the unique constraints).
    _exec(store, "UPDATE monitor_ledger SET seq = -6 WHERE seq = 6")
    _exec(store, "UPDATE monitor_ledger SET seq = 6 WHERE seq = 8")
    _exec(store, "UPDATE monitor_ledger SET seq = 8 WHERE seq = -6")
    result = _verify(store, tmp_path)
    assert not result.ok and result.first_bad_seq == 6, cols


def test_inserted_record_is_located(store, tmp_path):
    _fill(store)
    with store.session() as s:
        for seq in range(N, 8, -1):  # make room at 9 by renumbering the tail, top down
            s.execute(sa.update(LedgerRow).where(LedgerRow.seq == seq).values(seq=seq + 1))
        forged = ledger.append(ledger.LedgerHead(8, "sha256:" + "1" * 64), topic="tuneline.alert.raised", partition=0,
                               offset=99, ce_id="forged", ce_type="tuneline.alert.raised.v1", headers=[], payload=b"")
        s.add(LedgerRow(**forged.__dict__, payload=b""))
    result = _verify(store, tmp_path)
    # The store refuses a second record after 8 (prev_hash is unique), so the forgery links elsewhere.
    assert not result.ok and result.first_bad_seq == 9


def test_truncated_tail_is_detected_against_the_exported_head(store, tmp_path):
    _fill(store)
    audit.export_head(store, audit.head_file(tmp_path))
    _exec(store, "DELETE FROM monitor_ledger WHERE seq > 9")
    assert _verify(store, tmp_path, exported=False).ok  # why the head is exported outside the store
    result = _verify(store, tmp_path)
    assert not result.ok and result.first_bad_seq == 10 and "truncated" in result.problem


def test_export_never_moves_the_head_backwards(store, tmp_path):
    _fill(store)
    path = audit.head_file(tmp_path)
    audit.export_head(store, path)
    _exec(store, "DELETE FROM monitor_ledger WHERE seq > 3")
    assert audit.export_head(store, path).seq == N
