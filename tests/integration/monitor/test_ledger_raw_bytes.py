"""The ledger records what was on the topic, not what Tuneline's codec would have written.

A producer that is not Tuneline's (a plain confluent-kafka client) publishes an event whose bytes do
not round-trip through the codec: its protobuf value carries a field Tuneline's schema does not know,
its headers come in another order, with an extra text header and a non-UTF-8 one. The monitor's
ledger must hold those exact bytes and headers, `tuneline audit verify` must pass over them, and a
flipped byte in the stored record must be found.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
from contextlib import closing
from typing import cast

import pytest
from confluent_kafka import Producer
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import decode
from services.kernel.ids import sha256_bytes, uuid7
from services.kernel.store import Store
from services.monitor.audit import head_file, read_exported_head, verify_ledger
from tests.support import free_ports, python, settings_env, start_process, stop_process, wait_for

pytestmark = pytest.mark.integration
RUN_MONITOR = "import sys; sys.argv = ['tuneline', 'monitor', 'run']; from services.cli import main; main()"
# Field 999, wire type 0 (varint), value 1: a field from a newer schema Tuneline's message lacks.
UNKNOWN_FIELD = bytes([0xB8, 0x3E, 0x01])



def _foreign_event() -> tuple[bytes, list[tuple[str, bytes]], str]:
    event_id = uuid7()
    # Fields in reverse order (Tuneline writes them by number), then one Tuneline does not know.
    parts = [ev.DatasetPublished(format="csv"), ev.DatasetPublished(uri="file:///nowhere/partner.csv"),
             ev.DatasetPublished(dataset_name="partner-data")]
    value = b"".join(p.SerializeToString() for p in parts) + UNKNOWN_FIELD
    headers = [  # not Tuneline's order, plus headers Tuneline never writes
        ("x-partner-batch", b"2026-12-02/7"),
        ("ce_type", b"tuneline.dataset.published.v1"),
        ("ce_id", event_id.encode()),
        ("ce_time", b"2026-12-02T10:00:00+00:00"),
        ("ce_source", b"partner-etl/3"),
        ("ce_specversion", b"1.0"),
        ("x-opaque", b"\xff\xfe\x00binary"),
        ("ce_subject", b"partner-data"),
    ]
    return value, headers, event_id


def _stored(db, event_id: str) -> tuple[int, bytes, str, str] | None:
    if not db.exists():
        return None
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        try:
            row: tuple[int, bytes, str, str] | None = con.execute(
                "select seq, payload, payload_digest, headers_json from monitor_ledger where ce_id = ?", (event_id,)).fetchone()
            return row
        except sqlite3.OperationalError:  # tables not created yet
            return None


def test_the_ledger_hashes_the_exact_bytes_a_foreign_producer_sent(settings, tmp_path):
    settings = settings.replace(monitor_address=f"127.0.0.1:{free_ports()[0]}")
    value, headers, event_id = _foreign_event()
    assert decode(value, headers).message.SerializeToString() != value  # the codec would write other bytes
    monitor = start_process(python("-c", RUN_MONITOR), settings, tmp_path / "monitor.log")
    db = settings.state_dir / "stores" / "monitor.db"
    try:
        producer = Producer({"bootstrap.servers": settings.bootstrap})
        producer.produce(settings.topic("dataset.published"), value=value, key=b"partner-data", headers=list(headers))
        assert producer.flush(10) == 0
        seq, payload, digest, headers_json = cast("tuple[int, bytes, str, str]",
                                                  wait_for(lambda: _stored(db, event_id), 120, "the event in the ledger"))
        assert payload == value and digest == sha256_bytes(value)
        recorded = [(h["k"], h["v"].encode() if "v" in h else base64.b64decode(h["b64"])) for h in json.loads(headers_json)]
        assert recorded == headers, "headers not recorded exactly as received (order, extras, bytes)"
        cli = subprocess.run(python("-c", "import sys; sys.argv = ['tuneline', 'audit', 'verify']; "
                                          "from services.cli import main; main()"),
                             env=settings_env(settings), capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0 and "ledger ok" in cli.stdout, cli.stdout + cli.stderr
    finally:
        assert stop_process(monitor) == 0

    flipped = bytes([payload[0] ^ 0x01]) + payload[1:]
    with closing(sqlite3.connect(db)) as con, con:
        con.execute("update monitor_ledger set payload = ? where seq = ?", (flipped, seq))
    store = Store(f"sqlite:///{db}", "monitor")
    try:
        verdict = verify_ledger(store, read_exported_head(head_file(settings.state_dir)))
    finally:
        store.dispose()
    assert not verdict.ok and verdict.first_bad_seq == seq and "payload" in verdict.problem
