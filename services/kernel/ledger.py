"""The audit ledger's hash chain, pure: how a record is hashed and how a chain is verified.

Each record holds the previous record's hash, so changing, deleting, reordering or inserting any
record breaks the chain at that record. A truncated tail leaves a valid chain, so the head
(sequence, hash) is exported outside the ledger's store and checked against the chain here.

    hash = sha256(canonical_json({prev, seq, topic, partition, offset, ce_id, ce_type, headers,
                                  payload_digest}))

The record is over what was on the topic, byte for byte: the headers exactly as consumed (in the
order received, repeated keys kept; each value as text when it is UTF-8, as base64 otherwise, so the
JSON is a lossless copy) and the payload as the raw value bytes (through their sha256; the bytes kept
beside the record must match that digest). Nothing is re-serialised: an event from a producer that
is not Tuneline's — other header order, extra headers, unknown protobuf fields — is recorded, and
verifies, exactly as it was received.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from services.kernel.ids import canonical_json, sha256_bytes

GENESIS = "sha256:" + "0" * 64


@dataclass(frozen=True)
class LedgerRecord:
    """One appended event: where it came from, what it said, and its place in the chain."""

    seq: int
    topic: str
    partition: int
    offset: int
    ce_id: str
    ce_type: str
    headers_json: str
    payload_digest: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class LedgerHead:
    """The last record's sequence and hash (sequence 0 and GENESIS for an empty ledger)."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Verification:
    """The outcome of recomputing a chain: ok, or the first bad record and why."""

    ok: bool
    records: int
    first_bad_seq: int
    problem: str
    head: LedgerHead


def canonical_headers(headers: Iterable[tuple[str, bytes | str]]) -> str:
    """Kafka headers as JSON in received order: [{"k": key, "v": text}], or {"k", "b64"} for non-UTF-8 bytes."""
    items = []
    for key, value in headers:
        raw = value.encode() if isinstance(value, str) else bytes(value or b"")
        try:
            items.append({"k": key, "v": raw.decode("utf-8")})
        except UnicodeDecodeError:
            items.append({"k": key, "b64": base64.b64encode(raw).decode()})
    return canonical_json(items).decode()


def record_hash(
    prev_hash: str, seq: int, topic: str, partition: int, offset: int,
    ce_id: str, ce_type: str, headers_json: str, payload_digest: str,
) -> str:
    """The hash of one record over its predecessor's hash and all of its own fields."""
    return sha256_bytes(canonical_json({
        "prev": prev_hash, "seq": seq, "topic": topic, "partition": partition, "offset": offset,
        "ce_id": ce_id, "ce_type": ce_type, "headers": headers_json, "payload_digest": payload_digest,
    }))


def append(
    head: LedgerHead, *, topic: str, partition: int, offset: int, ce_id: str, ce_type: str,
    headers: Iterable[tuple[str, bytes | str]], payload: bytes,
) -> LedgerRecord:
    """The record that follows `head` for one event."""
    seq, headers_json, digest = head.seq + 1, canonical_headers(headers), sha256_bytes(payload)
    own = record_hash(head.hash, seq, topic, partition, offset, ce_id, ce_type, headers_json, digest)
    return LedgerRecord(seq, topic, partition, offset, ce_id, ce_type, headers_json, digest, head.hash, own)


def _problems(record: LedgerRecord, expected_seq: int, prev_hash: str, payload: bytes | None) -> str:
    if record.seq != expected_seq:
        return f"sequence {record.seq} where {expected_seq} was expected (record deleted, inserted or moved)"
    if record.prev_hash != prev_hash:
        return "prev_hash does not match the previous record's hash (record deleted, inserted or moved)"
    fields = (record.topic, record.partition, record.offset, record.ce_id, record.ce_type)
    if record_hash(record.prev_hash, record.seq, *fields, record.headers_json, record.payload_digest) != record.hash:
        return "hash does not match the record's contents (record modified)"
    if payload is not None and sha256_bytes(payload) != record.payload_digest:
        return "stored payload bytes do not match payload_digest (payload modified)"
    return ""


def verify_chain(
    records: Iterable[tuple[LedgerRecord, bytes | None]], exported: LedgerHead | None = None
) -> Verification:
    """Recompute the chain in storage order; name the first bad record, or a truncated tail.

    `exported` is the last head written outside the store: the chain must still contain that record
    with that hash, otherwise records were removed from the end.
    """
    expected, prev, count, seen_exported = 1, GENESIS, 0, exported is None or exported.seq == 0
    for record, payload in records:
        problem = _problems(record, expected, prev, payload)
        if problem:
            return Verification(False, count, expected, f"record {expected}: {problem}", LedgerHead(expected - 1, prev))
        if exported is not None and record.seq == exported.seq:
            if record.hash != exported.hash:
                return Verification(False, count, record.seq, f"record {record.seq}: hash differs from the exported head",
                                    LedgerHead(expected - 1, prev))
            seen_exported = True
        expected, prev, count = expected + 1, record.hash, count + 1
    if not seen_exported:
        assert exported is not None
        return Verification(False, count, count + 1,
                            f"truncated: the exported head is record {exported.seq} but the ledger ends at {count}",
                            LedgerHead(count, prev))
    return Verification(True, count, -1, "", LedgerHead(count, prev))


def chain(records: Iterable[LedgerRecord]) -> Iterator[tuple[LedgerRecord, None]]:
    """Records without stored payloads, for verify_chain."""
    return ((r, None) for r in records)
