"""Signed decisions: a consumer acts on a decision only when whoever may make it signed exactly it."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.bus.consumer import EventProcessor, RawRecord, Subscription
from services.kernel.events import Incoming, Outgoing, Record, decode, encode
from services.kernel.outbox import OutboxRelay, emit
from services.kernel.settings import Settings
from services.kernel.signing import SIGNATURE_HEADER, SIGNER_HEADER, Signer, Unauthenticated, Verifier, init_keys, keys_dir
from services.kernel.store import Store


class Sent:
    """Stands in for the Kafka producer: keeps what was sent."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def send(self, records: list[Record], timeout_s: float = 30.0) -> None:
        self.records.extend(records)


def _record(event: ev.EvalPassed | ev.GoalApplied | ev.RollbackRequested, subject: str = "banking77") -> Record:
    return encode(Outgoing(event, subject), topic="t", source="evaluator/1")


def _passed(digest: str = "sha256:" + "a" * 64) -> ev.EvalPassed:
    return ev.EvalPassed(outcome=ev.EvalOutcome(goal_name="banking77", passed=True, adapter=ev.ArtifactRef(digest=digest)))


def _sign(settings: Settings, identity: str, rec: Record) -> Record:
    signer = Signer.load(settings, identity)
    assert signer is not None
    return signer.sign(rec)


def test_keys_are_made_once_private_ones_unreadable_to_others(offline_settings: Settings) -> None:
    made = init_keys(offline_settings)
    assert "evaluator" in made and init_keys(offline_settings) == []           # never replaced
    key = keys_dir(offline_settings) / "evaluator.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_a_real_signature_verifies_and_names_the_signer(offline_settings: Settings) -> None:
    rec = _sign(offline_settings, "evaluator", _record(_passed()))
    assert Verifier(offline_settings).signer_of("eval.passed", rec.headers, rec.value) == "evaluator"
    # Events that are not decisions need no signature.
    assert Verifier(offline_settings).signer_of("dataset.published", [], b"") == ""


@pytest.mark.parametrize("forgery", ["unsigned", "swapped digest", "other goal", "new id on old bytes",
                                     "wrong signer", "bad base64", "key of another install"])
def test_forged_decisions_are_refused_with_the_reason(offline_settings: Settings, tmp_path: Path, forgery: str) -> None:
    real = _sign(offline_settings, "evaluator", _record(_passed()))
    headers, value = list(real.headers), real.value
    if forgery == "unsigned":
        headers = [(k, v) for k, v in headers if k not in (SIGNER_HEADER, SIGNATURE_HEADER)]
    elif forgery == "swapped digest":
        value = _passed("sha256:" + "b" * 64).SerializeToString()
    elif forgery == "other goal":
        headers = [(k, b"fraud-goal" if k == "ce_subject" else v) for k, v in headers]
    elif forgery == "new id on old bytes":
        headers = [(k, b"01a2b3c4-0000-7000-8000-000000000000" if k == "ce_id" else v) for k, v in headers]
    elif forgery == "wrong signer":  # the deployer's own key: it may not approve
        other = _sign(offline_settings, "deployer", _record(_passed()))
        headers, value = list(other.headers), other.value
    elif forgery == "bad base64":
        headers = [(k, b"%%%" if k == SIGNATURE_HEADER else v) for k, v in headers]
    else:  # signed by an evaluator key this installation does not trust
        stranger = offline_settings.replace(keys_dir=tmp_path / "stranger-keys")
        other = _sign(stranger, "evaluator", _record(_passed()))
        headers, value = list(other.headers), other.value
    with pytest.raises(Unauthenticated) as refused:
        Verifier(offline_settings).signer_of("eval.passed", headers, value)
    assert "eval.passed" in str(refused.value)


def test_the_consumer_dead_letters_a_forged_decision_and_acts_on_the_signed_one(offline_settings: Settings) -> None:
    acted: list[str] = []

    def handler(inc: Incoming[ev.EvalPassed], _s: Session) -> None:
        acted.append(inc.message.outcome.adapter.digest)

    producer = Sent()
    store = Store.open(offline_settings, "unit")
    proc = EventProcessor(Subscription("eval.passed", handler, "unit"), store, offline_settings,
                          producer, "deployer/1")  # type: ignore[arg-type]
    good = _sign(offline_settings, "evaluator", _record(_passed()))
    forged = Record(good.topic, good.key, _passed("sha256:" + "f" * 64).SerializeToString(), good.headers)
    unsigned = _record(_passed("sha256:" + "e" * 64))
    proc.process([RawRecord(r.topic, 0, i, r.key, r.value, r.headers) for i, r in enumerate((forged, unsigned, good))])
    assert acted == ["sha256:" + "a" * 64]
    letters = [cast(ev.DeadLetter, decode(r.value, r.headers).message) for r in producer.records]
    assert [(lt.offset, lt.error_type, lt.attempts) for lt in letters] == [(0, "Unauthenticated", 1), (1, "Unauthenticated", 1)]
    assert "does not match" in letters[0].error and "not signed" in letters[1].error
    assert letters[0].original_value == forged.value       # nothing accepted is lost: the bytes are kept
    store.dispose()


def test_the_outbox_relay_signs_what_a_service_emits(offline_settings: Settings) -> None:
    store = Store.open(offline_settings, "evaluator")
    with store.session() as s:
        emit(s, Outgoing(_passed(), "banking77"))
    producer = Sent()
    OutboxRelay(store, offline_settings, "evaluator/7", producer).relay_once()  # type: ignore[arg-type]
    [rec] = producer.records
    assert dict(rec.headers)[SIGNER_HEADER].decode().startswith("evaluator:")
    assert base64.b64decode(dict(rec.headers)[SIGNATURE_HEADER])
    assert Verifier(offline_settings).signer_of("eval.passed", rec.headers, rec.value) == "evaluator"
    store.dispose()


def test_a_rotated_key_stays_trusted_under_a_label_until_removed(offline_settings: Settings) -> None:
    old = _sign(offline_settings, "evaluator", _record(_passed()))
    folder = keys_dir(offline_settings)
    (folder / "evaluator.pub").rename(folder / "evaluator.2026-12.pub")   # keep the old key trusted
    (folder / "evaluator.key").unlink()
    init_keys(offline_settings, ("evaluator",))                             # the new pair
    new = _sign(offline_settings, "evaluator", _record(_passed()))
    assert dict(old.headers)[SIGNER_HEADER] != dict(new.headers)[SIGNER_HEADER]
    for rec in (old, new):
        assert Verifier(offline_settings).signer_of("eval.passed", rec.headers, rec.value) == "evaluator"
    (folder / "evaluator.2026-12.pub").unlink()                              # rotation finished
    with pytest.raises(Unauthenticated, match="not one of evaluator's trusted keys"):
        Verifier(offline_settings).signer_of("eval.passed", old.headers, old.value)
