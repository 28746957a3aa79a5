"""The audit ledger in the monitor's store: append every event once, index it, verify, export the head."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from services.kernel import ledger
from services.kernel.events import CONTENT_TYPE, SPEC_VERSION, Incoming, ce_type
from services.kernel.store import Store
from services.monitor import retention
from services.monitor.batching import buffered
from services.monitor.lineage_keys import keys_of
from services.monitor.store import LedgerRow, LineageKey

log = logging.getLogger(__name__)
_HEAD_KEY = "monitor.ledger_head"
_PAGE = 2000
M = TypeVar("M", bound=Message)


def cloud_event_headers(inc: Incoming[M]) -> list[tuple[str, str]]:
    """The CloudEvents headers events.encode writes for a decoded event (for events built in-process)."""
    when = inc.time.isoformat(timespec="microseconds").replace("+00:00", "Z")
    headers = [("ce_specversion", SPEC_VERSION), ("ce_id", inc.id), ("ce_source", inc.source),
               ("ce_type", ce_type(inc.type)), ("ce_time", when), ("ce_subject", inc.subject),
               ("content-type", CONTENT_TYPE)]
    trace = [("traceparent", inc.traceparent), ("tracestate", inc.tracestate)]
    return headers + [(k, v) for k, v in trace if v]


def _received_ce_type(inc: Incoming[M]) -> str:
    for key, value in inc.raw_headers:
        if key == "ce_type":
            return value.decode()
    return ce_type(inc.type)


def _head(session: Session) -> ledger.LedgerHead:
    # The head is cached for the transaction: a batch of 500 events reads it once.
    cached = session.info.get(_HEAD_KEY)
    if cached is None:
        row = session.execute(sa.select(LedgerRow.seq, LedgerRow.hash).order_by(LedgerRow.seq.desc()).limit(1)).first()
        cached = ledger.LedgerHead(row.seq, row.hash) if row else ledger.LedgerHead(0, ledger.GENESIS)
    return cached


def append_event(inc: Incoming[M], session: Session) -> ledger.LedgerRecord:
    """Append one event to the chain in the caller's transaction (the inbox makes it once).

    A consumed event is recorded over the exact bytes and headers that were on the topic; only an
    event built in-process (no raw bytes) is encoded the way a Tuneline producer would.
    """
    consumed = bool(inc.raw_headers)
    payload = inc.raw_value if consumed else inc.message.SerializeToString()
    headers: list[tuple[str, bytes]] | list[tuple[str, str]] = (
        list(inc.raw_headers) if consumed else cloud_event_headers(inc))
    rec = ledger.append(_head(session), topic=inc.topic, partition=inc.partition, offset=inc.offset,
                        ce_id=inc.id, ce_type=_received_ce_type(inc), headers=headers, payload=payload)
    buffered(session, LedgerRow).append(dict(rec.__dict__, payload=payload, subject=inc.subject[:300],
                                             event_ms=int(inc.time.timestamp() * 1000), purged_by=None))
    keys = [{"key": key, "seq": rec.seq, "kind": kind} for kind, key in keys_of(inc.type, inc.id, inc.message)]
    buffered(session, LineageKey).extend(keys)
    session.info[_HEAD_KEY] = ledger.LedgerHead(rec.seq, rec.hash)
    return rec


def _to_record(row: LedgerRow) -> ledger.LedgerRecord:
    return ledger.LedgerRecord(row.seq, row.topic, row.partition, row.offset, row.ce_id, row.ce_type,
                               row.headers_json, row.payload_digest, row.prev_hash, row.hash)


def stored_records(store: Store) -> Iterator[tuple[ledger.LedgerRecord, bytes | None]]:
    """Every ledger record with its payload bytes, in sequence order, a page at a time."""
    after = 0
    while True:
        with store.session() as s:
            rows = s.execute(sa.select(LedgerRow).where(LedgerRow.seq > after).order_by(LedgerRow.seq).limit(_PAGE)).scalars().all()
        if not rows:
            return
        for row in rows:
            # A payload whose text retention removed no longer matches its digest; check_deletions vouches for it.
            yield _to_record(row), (row.payload if row.purged_by is None else None)
        after = rows[-1].seq


def head_file(state_dir: Path) -> Path:
    """Where the head is exported: beside, not inside, the store."""
    return state_dir / "audit" / "ledger-head.json"


def read_exported_head(path: Path) -> ledger.LedgerHead | None:
    """The last exported head, or None when none was exported yet."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return ledger.LedgerHead(int(data["seq"]), str(data["hash"]))


def current_head(store: Store) -> ledger.LedgerHead:
    """The stored chain's last record (as stored; verify_ledger checks it)."""
    with store.session() as s:
        return _head(s)


def export_head(store: Store, path: Path) -> ledger.LedgerHead:
    """Write the current head to `path` atomically, never moving it backwards."""
    head = current_head(store)
    previous = read_exported_head(path)
    if previous is not None and previous.seq > head.seq:
        log.error("ledger ends at %d but record %d was exported: not moving the head back", head.seq, previous.seq)
        return previous
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".head-")
    with os.fdopen(fd, "w") as f:
        json.dump({"seq": head.seq, "hash": head.hash}, f)
    os.replace(tmp, path)
    return head


def verify_ledger(store: Store, exported: ledger.LedgerHead | None) -> ledger.Verification:
    """Recompute the whole chain from the store (storage order) against the exported head, and account
    for every payload retention changed."""
    chained = ledger.verify_chain(stored_records(store), exported)
    if not chained.ok:
        return chained
    deletions = retention.check_deletions(store)
    if not deletions.ok:
        return ledger.Verification(False, chained.records, deletions.seq, deletions.problem, chained.head)
    return chained
