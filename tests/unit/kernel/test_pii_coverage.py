"""PII coverage (issue 19): recall per kind on the seeded set, precision on banking77's clean texts,
every IBAN country and every phone region, and no seeded value in a logged inference event."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest

from benchmarks.pii_seeded import IBAN_STRUCTURES, corpus, hard_negatives, near_misses
from services.deployer.serving.inference_log import LogEntry, to_message
from services.kernel.pii import KINDS, PLACEHOLDERS, scrub

REPO = Path(__file__).resolve().parents[3]
SEEDED = corpus(200)


def test_the_seeded_set_has_200_values_of_every_kind_and_an_iban_of_every_registry_country():
    per_kind = Counter(s.kind for s in SEEDED)
    assert set(per_kind) == set(KINDS) and min(per_kind.values()) >= 200
    countries = {s.value[:2] for s in SEEDED if s.kind == "iban"}
    assert countries == {cc for cc, _ in IBAN_STRUCTURES} and len(countries) > 80


@pytest.mark.parametrize("kind", KINDS)
def test_recall_of_every_kind_on_the_seeded_set_is_at_least_0_99(kind):
    samples = [s for s in SEEDED if s.kind == kind]
    found = [s for s in samples if (out := scrub(s.text)).text == s.expected and out.counts == {kind: 1}]
    missed = [s.text for s in samples if s not in found]
    assert len(found) / len(samples) >= 0.99, missed[:5]


def test_no_seeded_value_survives_and_scrubbing_the_result_again_changes_nothing():
    outputs = [scrub(s.text).text for s in SEEDED]
    assert not [s.value for s, out in zip(SEEDED, outputs, strict=True) if s.value in out]
    assert all(scrub(out).text == out for out in outputs)


def test_placeholders_are_typed_and_the_same_for_every_kind():
    assert PLACEHOLDERS == {kind: f"<{kind.upper()}>" for kind in KINDS}


def test_near_misses_are_left_alone():
    changed = [(t, scrub(t).text) for t in hard_negatives() if scrub(t).text != t]
    assert not changed


def test_a_broken_check_digit_is_never_taken_for_its_kind():
    misses = near_misses(200)
    assert not [s.text for s in misses if s.kind in scrub(s.text).counts]
    # Cards and Aadhaar numbers are left as they are; an IBAN with a bad check digit may still have a
    # Luhn-valid run of digits in it, which is scrubbed as a card (the safe side).
    assert not [s.text for s in misses if s.kind != "iban" and scrub(s.text).text != s.text]


def test_precision_on_banking77_clean_texts_is_at_least_0_999():
    texts = []
    for split in ("train", "test"):
        with open(REPO / "datasets" / "banking77" / f"{split}.csv", newline="", encoding="utf-8") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    false = [scrub(t).text for t in texts if scrub(t).found]
    assert len(texts) > 11_000
    assert 1 - len(false) / len(texts) >= 0.999, false[:10]


@pytest.mark.parametrize("kind", [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
def test_every_region_example_number_in_international_format_is_a_phone(kind):
    missed = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        number = phonenumbers.example_number_for_type(region, kind)
        if number is None:
            continue
        for fmt in (phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164):
            written = phonenumbers.format_number(number, fmt)
            if scrub(f"call me on {written} please").text != "call me on <PHONE> please":
                missed.append(written)
    assert not missed


def _entry(text: str) -> LogEntry:
    return LogEntry(request_id="r1", goal="g", goal_version="v", adapter_digest="sha256:a", dataset_version="sha256:d",
                    deployment_id="d1", variant="canary", label="card_arrival", confidence=0.9, margin=0.5,
                    latency_ms=3.0, text_length=len(text), token_count=12, embedding=None, text=text, escalated=False,
                    error=False, error_code="", served_at_unix_ms=0, tenant="t", trace_id="", traceparent="")


def test_the_inference_logged_event_carries_no_seeded_value():
    leaked = []
    for s in SEEDED[::5]:
        msg = to_message(_entry(s.text), None)
        wire = msg.SerializeToString()
        if s.value.encode() in wire or msg.text != s.expected:
            leaked.append(s.text)
    assert not leaked
