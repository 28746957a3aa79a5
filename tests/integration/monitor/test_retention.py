"""Retention of logged text: past a goal's log_retention_days, no text remains in the monitor's store,
the ledger records the deletion (not the text), still verifies, and a payload changed any other way
is caught.

The first tests drive the monitor's handlers on a real store in-process, the way the kernel does
(one transaction per event); the last runs the monitor service against the real broker and reads
the SQLite file's bytes once the monitor has stopped.
"""

from __future__ import annotations

import sqlite3
import subprocess
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.bus.producer import EventProducer
from services.kernel.events import Incoming, Outgoing, decode, encode
from services.kernel.goal import Goal, load_goal
from services.kernel.ids import uuid7
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import Store, outbox
from services.monitor import handlers, retention
from services.monitor.audit import verify_ledger
from services.monitor.store import MIGRATIONS, LedgerRow
from tests.support import EventLog, free_ports, publish_signed, python, settings_env, signed, start_process, stop_process, wait_for

pytestmark = pytest.mark.integration
BASE = load_goal(REPO_ROOT / "goals" / "banking77.yaml")
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _goal(name: str, days: int | None) -> Goal:
    return BASE.replace(name=name, policy=BASE.policy.replace(log_text=True, log_retention_days=days))


def _incoming(message: ev.InferenceLogged | ev.GoalApplied | ev.RetentionApplied, subject: str, at: datetime) -> Incoming[Any]:
    record = encode(Outgoing(message, subject), topic="t", source="test/1")
    headers = [(k, at.isoformat().replace("+00:00", "Z").encode() if k == "ce_time" else v) for k, v in record.headers]
    inc = decode(record.value, headers)
    return Incoming(**{**inc.__dict__, "raw_value": record.value, "raw_headers": headers, "topic": "t", "partition": 0})


def _logged(goal: str, text: str, at: datetime) -> Incoming[Any]:
    msg = ev.InferenceLogged(request_id=uuid7(), goal_name=goal, adapter_digest="sha256:" + "a" * 64, label="card_arrival",
                             confidence=0.9, text=text, text_length=len(text), served_at_unix_ms=int(at.timestamp() * 1000))
    return _incoming(msg, goal, at)


class Ledger:
    """The monitor's ledger consumer and goal handler on a real store, one transaction per event."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'monitor.db'}", "monitor")
        self.store.migrate(MIGRATIONS)

    def send(self, inc: Incoming[Any]) -> None:
        with self.store.session() as s:
            if inc.type == "retention.applied":
                handlers.on_retention_applied(inc, s)
                return
            handlers.record_in_ledger(inc, s)
            if inc.type == "goal.applied":
                handlers.on_goal_applied(inc, s)

    def apply_goal(self, goal: Goal) -> None:
        msg = ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())
        self.send(_incoming(msg, goal.name, NOW - 100 * DAY))

    def relay_decisions(self) -> list[ev.RetentionApplied]:
        """What the sweeper emitted, delivered back to the ledger consumer (as Kafka would)."""
        with self.store.session() as s:
            values = s.execute(sa.select(outbox.c.value).order_by(outbox.c.seq)).scalars().all()
            s.execute(outbox.delete())
        decisions = [ev.RetentionApplied.FromString(v) for v in values]
        for d in decisions:
            self.send(_incoming(d, d.goal_name, NOW))
        return decisions

    def texts(self) -> list[str]:
        with self.store.session() as s:
            rows = s.execute(sa.select(LedgerRow.payload).where(LedgerRow.ce_type == "tuneline.inference.logged.v1")).scalars()
            return [ev.InferenceLogged.FromString(p).text for p in rows]

    def tamper(self, **where_and_set: object) -> None:
        seq = where_and_set.pop("seq")
        with self.store.session() as s:
            s.execute(sa.update(LedgerRow).where(LedgerRow.seq == seq).values(**where_and_set))


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path)


def test_text_past_its_goals_retention_goes_and_the_ledger_records_the_deletion(ledger: Ledger) -> None:
    ledger.apply_goal(_goal("short", 30))
    ledger.apply_goal(_goal("long", 90))
    old = [_logged("short", f"old secret {i}", NOW - 40 * DAY) for i in range(3)]
    for inc in [*old, _logged("short", "recent text", NOW - 2 * DAY), _logged("long", "long kept text", NOW - 40 * DAY)]:
        ledger.send(inc)

    assert retention.sweep(ledger.store, int(NOW.timestamp() * 1000)) == ["short"]
    [decision] = ledger.relay_decisions()
    assert (decision.goal_name, decision.records, decision.retention_days) == ("short", 3, 30)

    assert sorted(ledger.texts()) == ["", "", "", "long kept text", "recent text"]
    with ledger.store.session() as s:
        purged = s.execute(sa.select(LedgerRow).where(LedgerRow.purged_by.is_not(None))).scalars().all()
        kept = [ev.InferenceLogged.FromString(r.payload) for r in purged]
    # What the text was for stays: the request, its adapter and its score answer lineage questions.
    assert sorted(k.request_id for k in kept) == sorted(i.message.request_id for i in old)
    assert {k.adapter_digest for k in kept} == {"sha256:" + "a" * 64}
    assert verify_ledger(ledger.store, None).ok
    # Nothing left to remove: the next sweep decides nothing.
    assert retention.sweep(ledger.store, int(NOW.timestamp() * 1000)) == []


def test_a_repeated_decision_changes_nothing_and_the_default_retention_is_30_days(ledger: Ledger) -> None:
    ledger.apply_goal(_goal("default", None))
    ledger.send(_logged("default", "29 days old", NOW - 29 * DAY))
    ledger.send(_logged("default", "31 days old", NOW - 31 * DAY))
    retention.sweep(ledger.store, int(NOW.timestamp() * 1000))
    retention.sweep(ledger.store, int(NOW.timestamp() * 1000))  # a restart before delivery sweeps again
    assert len(ledger.relay_decisions()) == 2
    assert sorted(ledger.texts()) == ["", "29 days old"]
    assert verify_ledger(ledger.store, None).ok


def test_a_payload_changed_without_a_covering_decision_fails_verification(ledger: Ledger) -> None:
    ledger.apply_goal(_goal("short", 30))
    ledger.send(_logged("short", "old", NOW - 40 * DAY))
    ledger.send(_logged("short", "recent", NOW - 1 * DAY))
    retention.sweep(ledger.store, int(NOW.timestamp() * 1000))
    ledger.relay_decisions()
    with ledger.store.session() as s:
        rows = {ev.InferenceLogged.FromString(r.payload).text or "old": r for r in s.execute(
            sa.select(LedgerRow).where(LedgerRow.ce_type == "tuneline.inference.logged.v1")).scalars()}
    retention_seq = cast(int, rows["old"].purged_by)
    recent = rows["recent"]
    assert verify_ledger(ledger.store, None).ok

    # A recent record's text removed, claiming the decision covers it: outside the decision's cutoff.
    redacted = retention.redact(recent.payload)
    ledger.tamper(seq=recent.seq, payload=redacted, purged_by=retention_seq)
    verdict = verify_ledger(ledger.store, None)
    assert not verdict.ok and verdict.first_bad_seq == recent.seq and "outside what retention record" in verdict.problem

    # The same change with no claim at all: a modified payload.
    ledger.tamper(seq=recent.seq, purged_by=None)
    verdict = verify_ledger(ledger.store, None)
    assert not verdict.ok and "payload modified" in verdict.problem

    # A redacted record edited afterwards (another label): the decision's digest no longer matches.
    ledger.tamper(seq=recent.seq, payload=recent.payload)
    assert verify_ledger(ledger.store, None).ok
    forged = ev.InferenceLogged.FromString(rows["old"].payload)
    forged.label = "refund_not_showing_up"
    ledger.tamper(seq=rows["old"].seq, payload=forged.SerializeToString())
    verdict = verify_ledger(ledger.store, None)
    assert not verdict.ok and "differ from what retention record" in verdict.problem


def test_a_decision_that_does_not_match_the_ledger_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    ledger.apply_goal(_goal("short", 30))
    ledger.send(_logged("short", "old", NOW - 40 * DAY))
    with ledger.store.session() as s:
        decision = retention.due(s, _goal("short", 30), int(NOW.timestamp() * 1000))
    assert decision is not None
    decision.records += 1
    with pytest.raises(Exception, match="does not match the ledger"):
        ledger.send(_incoming(decision, "short", NOW))
    assert ledger.texts() == ["old"]


# ---------------------------------------------------------------- the service, on the real broker

RUN_MONITOR = "import sys; sys.argv = ['tuneline', 'monitor', 'run']; from services.cli import main; main()"


def _published_logged(settings: Settings, goal: str, text: str, at: datetime, ce_type: bytes = b"") -> None:
    msg = ev.InferenceLogged(request_id=uuid7(), goal_name=goal, label="card_arrival", text=text, text_length=len(text),
                             served_at_unix_ms=int(at.timestamp() * 1000))
    record = encode(Outgoing(msg, goal), topic=settings.topic("inference.logged"), source="deployer/test")
    stamp = at.isoformat().replace("+00:00", "Z").encode()
    record = record.__class__(record.topic, record.key, record.value,
                              [(k, stamp if k == "ce_time" else ce_type or v if k == "ce_type" else v) for k, v in record.headers])
    producer = EventProducer(settings)
    producer.send([signed(settings, record)])
    producer.close()


def _purged(db: Path) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        try:
            return int(con.execute("select count(*) from monitor_ledger where purged_by is not null").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_the_monitor_removes_expired_text_from_its_store_file_and_the_bus_keeps_the_log_no_longer(settings: Settings,
                                                                                                    tmp_path: Path) -> None:
    settings = settings.replace(monitor_address=f"127.0.0.1:{free_ports()[0]}")
    goal = _goal("retained", 30)
    publish_signed(settings, [Outgoing(ev.GoalApplied(goal_name=goal.name, goal_version=goal.version,
                                                      goal_json=goal.canonical_json()), goal.name)])
    secret, recent = "expired-secret-7f3a9c", "recent-text-2b8d41"
    for i in range(3):
        _published_logged(settings, goal.name, f"{secret}-{i}", datetime.now(UTC) - 45 * DAY)
    _published_logged(settings, goal.name, recent, datetime.now(UTC) - DAY)
    # A record the monitor cannot take (a type it does not know) is dead-lettered without its text:
    # the dead-letter topic and the ledger keep letters longer than the goal keeps text.
    lettered = "dead-lettered-secret-5e1c"
    _published_logged(settings, goal.name, lettered, datetime.now(UTC), ce_type=b"tuneline.inference.logged.v9")
    monitor = start_process(python("-c", RUN_MONITOR), settings, tmp_path / "monitor.log",
                            TUNELINE_MONITOR_RETENTION_SWEEP_S="0.5")
    db = settings.state_dir / "stores" / "monitor.db"
    try:
        wait_for(lambda: _purged(db) == 3, 120, "the expired records' text removed")
        decisions = EventLog(settings, "retention.applied")
        assert decisions.wait(1, 30)[0].message.goal_name == goal.name
        decisions.close()
        letters = EventLog(settings, "deadletter")
        letter = letters.wait(1, 60)[0].message
        letters.close()
        kept = ev.InferenceLogged.FromString(letter.original_value)
        assert kept.goal_name == goal.name and kept.request_id and not kept.text, "the letter keeps the record, not the text"
        assert not [r for r in letters.records if lettered.encode() in (r[1] or b"")]
        verify = "import sys; sys.argv = ['tuneline', 'audit', 'verify']; from services.cli import main; main()"
        verified = subprocess.run(python("-c", verify), env=settings_env(settings), capture_output=True, text=True, timeout=120)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        stop_process(monitor)
    raw = db.read_bytes() + (db.with_name(db.name + "-wal").read_bytes() if db.with_name(db.name + "-wal").exists() else b"")
    assert secret.encode() not in raw, "expired text is still in the monitor's store file"
    assert lettered.encode() not in raw, "a dead letter kept the request text"
    assert recent.encode() in raw
    # The bus: the predictions' log topic keeps records no longer than inference_log_retention_days.
    from confluent_kafka.admin import ConfigResource

    from services.kernel.bus.topics import admin

    resource = ConfigResource(ConfigResource.Type.TOPIC, settings.topic("inference.logged"))
    client = admin(settings)
    configs = client.describe_configs([resource])[resource].result(timeout=30)
    assert configs["retention.ms"].value == str(settings.inference_log_retention_days * 86_400_000)



def test_a_shorter_retention_set_later_reaches_the_existing_topic(settings: Settings) -> None:
    """Topics keep the configuration they were created with; `tuneline kafka topics` (and `kafka start`)
    bring the predictions' log topic to the retention configured now."""
    from confluent_kafka.admin import ConfigResource

    from services.kernel.bus.topics import admin, align_topic_configs

    topic = settings.topic("inference.logged")
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)

    client = admin(settings)

    def retention_ms() -> str:
        return cast(str, client.describe_configs([resource])[resource].result(timeout=30)["retention.ms"].value)

    assert align_topic_configs(settings) == [], "created with the configured retention: nothing to change"
    shorter = settings.replace(inference_log_retention_days=2)
    env = {**settings_env(shorter), "TUNELINE_INFERENCE_LOG_RETENTION_DAYS": "2"}
    done = subprocess.run(python("-m", "services.cli", "kafka", "topics"), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert topic in done.stdout.replace("\n", "")
    assert retention_ms() == str(2 * 86_400_000)
    assert align_topic_configs(shorter) == []
