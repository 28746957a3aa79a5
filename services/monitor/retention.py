"""Retention of logged text: the ledger keeps each prediction's record and forgets its text on time.

A goal that logs request text (`policy.log_text`) keeps it `policy.log_retention_days` (30 by
default). Text lives in three places: the bus (the inference.logged topic's retention.ms, which the
deployer never exceeds), the monitor's windows (which keep features, never text) and the ledger,
which keeps every event's bytes. The ledger's chain is over each payload's digest, so a payload can
change without breaking the chain; what must not happen is a change nobody can account for.

So deletion is a decision, made and recorded like the others:
1. The sweeper (a thread in the monitor) finds, per goal, the inference.logged records whose
   `ce_time` is older than the goal allows and emits a signed `retention.applied` naming them: the
   goal, the cutoff, the range of ledger sequences, and the digest of what remains of them once
   their text is removed (`redactions_digest`, over every matching record in the range).
2. The ledger consumer appends that event and, in the same transaction, replaces each named
   record's payload with its redacted form (the same protobuf with `text` empty and unknown fields
   dropped) and sets `purged_by` to the retention record's sequence. Request id, adapter, goal and
   scores stay, so lineage still answers for an old request.
3. Verification (`check_deletions`) accepts a payload that no longer matches its digest only when a
   retention record in the chain covers it: its type, subject and time (read from the record's own
   headers, which the chain covers) meet the criterion, its sequence is in the range and before the
   retention record, and the digest over the range's redacted payloads is the one the retention
   record states. Anything else is reported as a modified payload.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import InvalidInput
from services.kernel.events import Outgoing, ce_type
from services.kernel.goal import Goal
from services.kernel.goals import all_goals
from services.kernel.ids import digest_json, sha256_bytes
from services.kernel.outbox import emit
from services.kernel.periodic import Periodic
from services.kernel.pii import logged_without_text
from services.kernel.store import Store
from services.monitor.batching import flush_buffers
from services.monitor.store import LedgerRow

log = logging.getLogger(__name__)
LOGGED = "inference.logged"
_LOGGED_TYPE, _RETENTION_TYPE = ce_type(LOGGED), ce_type("retention.applied")
_DAY_MS = 86_400_000
_BATCH = 5000  # records per retention.applied: one transaction each


def redact(payload: bytes) -> bytes:
    """An inference.logged payload without its text (and without unknown fields that could hold some)."""
    return logged_without_text(payload)


def redactions_digest(pairs: list[tuple[int, bytes]]) -> str:
    """The digest a retention record states: over [[seq, sha256 of the redacted payload], ...] in order."""
    return digest_json([[seq, sha256_bytes(redacted)] for seq, redacted in pairs])


def subject_and_ms(headers_json: str) -> tuple[str, int | None]:
    """A record's ce_subject and ce_time (ms since the epoch) from its stored headers."""
    headers = {h["k"]: h.get("v", "") for h in json.loads(headers_json)}
    try:
        ms: int | None = int(datetime.fromisoformat(headers.get("ce_time", "").replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        ms = None
    return headers.get("ce_subject", ""), ms


def _matching(goal: str, cutoff_ms: int) -> sa.ColumnElement[bool]:
    return sa.and_(LedgerRow.ce_type == _LOGGED_TYPE, LedgerRow.subject == goal, LedgerRow.event_ms < cutoff_ms)


def _covered(session: Session, goal: str, cutoff_ms: int, first: int, last: int) -> list[LedgerRow]:
    """Every record a retention decision covers, redacted already or not, in sequence order."""
    query = sa.select(LedgerRow).where(_matching(goal, cutoff_ms), LedgerRow.seq.between(first, last)).order_by(LedgerRow.seq)
    return list(session.execute(query).scalars())


def _redacted(row: LedgerRow) -> bytes:
    return row.payload if row.purged_by is not None else redact(row.payload)


def due(session: Session, goal: Goal, now_ms: int) -> ev.RetentionApplied | None:
    """The retention decision a goal calls for now: its oldest unredacted records past retention, or None."""
    days = goal.policy.retention_days
    cutoff = now_ms - days * _DAY_MS
    seqs = session.execute(sa.select(LedgerRow.seq).where(_matching(goal.name, cutoff), LedgerRow.purged_by.is_(None))
                           .order_by(LedgerRow.seq).limit(_BATCH)).scalars().all()
    if not seqs:
        return None
    rows = _covered(session, goal.name, cutoff, seqs[0], seqs[-1])
    pairs = [(r.seq, _redacted(r)) for r in rows]
    return ev.RetentionApplied(goal_name=goal.name, event_type=LOGGED, retention_days=days, cutoff_unix_ms=cutoff,
                               first_seq=seqs[0], last_seq=seqs[-1], records=len(pairs),
                               redactions_digest=redactions_digest(pairs), requested_at_unix_ms=now_ms)


def sweep(store: Store, now_ms: int | None = None) -> list[str]:
    """Emit a retention decision for every goal with text past its retention; returns the goals."""
    now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000

    def run(session: Session) -> list[str]:
        decided = []
        for goal in all_goals(session):
            decision = due(session, goal, now_ms)
            if decision is not None:
                emit(session, Outgoing(decision, goal.name))
                decided.append(goal.name)
        return decided

    decided = store.run(run)
    for name in decided:
        log.info("goal %s: logged text past its retention is being removed from the ledger", name)
    return decided


def apply(session: Session, decision: ev.RetentionApplied, seq: int) -> int:
    """Redact what a retention record at `seq` names; returns how many payloads changed now.

    The records must be exactly those the decision states (same range, same redacted digest), else
    nothing changes and the decision is refused. Records redacted before (a repeated decision) stay.
    """
    if decision.event_type != LOGGED:
        raise InvalidInput(f"retention of {decision.event_type!r} events is not supported", hint="only inference.logged")
    flush_buffers(session)  # records appended earlier in this transaction must be visible below
    rows = _covered(session, decision.goal_name, decision.cutoff_unix_ms, decision.first_seq, decision.last_seq)
    pairs = [(r.seq, _redacted(r)) for r in rows]
    if len(pairs) != decision.records or redactions_digest(pairs) != decision.redactions_digest or decision.last_seq >= seq:
        raise InvalidInput(f"retention.applied for goal {decision.goal_name} does not match the ledger's records "
                           f"{decision.first_seq}..{decision.last_seq} ({len(pairs)} found, {decision.records} stated)",
                           hint="a retention decision names the exact records it removes text from")
    todo = [{"s": r.seq, "p": redacted} for r, (_, redacted) in zip(rows, pairs, strict=True) if r.purged_by is None]
    if todo:
        table = cast(sa.Table, LedgerRow.__table__)
        session.execute(sa.update(table).where(table.c.seq == sa.bindparam("s"))
                        .values(payload=sa.bindparam("p"), purged_by=seq), todo)
    return len(todo)


@dataclass(frozen=True)
class Deletion:
    """A problem with a removed payload, or none."""

    ok: bool
    seq: int = -1
    problem: str = ""


def check_deletions(store: Store) -> Deletion:
    """Every redacted payload is accounted for by a retention record in the chain (see the module)."""
    with store.session() as s:
        decisions = {row.seq: ev.RetentionApplied.FromString(row.payload)
                     for row in s.execute(sa.select(LedgerRow).where(LedgerRow.ce_type == _RETENTION_TYPE)).scalars()}
        purged = s.execute(sa.select(LedgerRow).where(LedgerRow.purged_by.is_not(None))
                           .order_by(LedgerRow.purged_by, LedgerRow.seq)).scalars().all()
        checked: set[int] = set()
        for row in purged:
            assert row.purged_by is not None
            decision = decisions.get(row.purged_by)
            if decision is None:
                return Deletion(False, row.seq, f"record {row.seq}: payload changed, and record {row.purged_by} "
                                                "is not a retention decision (payload modified)")
            subject, ms = subject_and_ms(row.headers_json)
            if (row.ce_type != _LOGGED_TYPE or subject != decision.goal_name or ms is None or ms >= decision.cutoff_unix_ms
                    or not decision.first_seq <= row.seq <= decision.last_seq or row.seq >= row.purged_by):
                return Deletion(False, row.seq, f"record {row.seq}: payload changed outside what retention record "
                                                f"{row.purged_by} covers (payload modified)")
            if ev.InferenceLogged.FromString(row.payload).text:
                return Deletion(False, row.seq, f"record {row.seq}: a redacted payload that still holds text")
            if row.purged_by not in checked:
                checked.add(row.purged_by)
                rows = _covered(s, decision.goal_name, decision.cutoff_unix_ms, decision.first_seq, decision.last_seq)
                if redactions_digest([(r.seq, _redacted(r)) for r in rows]) != decision.redactions_digest:
                    return Deletion(False, row.seq, f"records {decision.first_seq}..{decision.last_seq}: the redacted "
                                                    f"payloads differ from what retention record {row.purged_by} states")
    return Deletion(True)


def retention_sweeper(store: Store, every_s: float, now: Callable[[], int] | None = None) -> Periodic:
    """Runs `sweep` every `every_s` seconds on a thread; `now` is the clock (tests move it)."""
    clock = now or (lambda: time.time_ns() // 1_000_000)
    return Periodic(lambda: sweep(store, clock()), every_s, "retention sweep")
