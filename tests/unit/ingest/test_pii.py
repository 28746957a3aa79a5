from hypothesis import given
from hypothesis import strategies as st

from services.kernel.pii import iban_valid, luhn_valid, redact, scrub

VALID_CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011000000000004"]
INVALID_CARDS = ["4111 1111 1111 1112", "5500-0000-0000-0005", "6011000000000005"]
VALID_IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606"]
INVALID_IBANS = ["GB82 WEST 1234 5698 7654 33", "DE89370400440532013001"]


def test_checksums():
    assert all(luhn_valid(c.replace(" ", "").replace("-", "")) for c in VALID_CARDS)
    assert not any(luhn_valid(c.replace(" ", "").replace("-", "")) for c in INVALID_CARDS)
    assert all(iban_valid(i) for i in VALID_IBANS) and not any(iban_valid(i) for i in INVALID_IBANS)


def test_every_kind_is_scrubbed_and_counted():
    text = ("mail jane.doe+x@bank.co.uk, call +44 20 7946 0958 or (555) 123-4567, card 4111 1111 1111 1111, "
            "iban GB82 WEST 1234 5698 7654 32, from 10.0.0.1 and 2001:db8::1")
    s = scrub(text)
    assert s.counts == {"email": 1, "phone": 2, "card": 1, "iban": 1, "ip": 2}
    for secret in ("jane.doe", "7946", "123-4567", "4111", "WEST", "10.0.0.1", "2001:db8"):
        assert secret not in s.text
    assert "<EMAIL>" in s.text and "<CARD>" in s.text and "<IBAN>" in s.text and "<IP>" in s.text


def test_invalid_cards_and_ibans_are_left_alone():
    for value in INVALID_CARDS + INVALID_IBANS:
        s = scrub(f"number {value} here")
        assert value in s.text, s
        assert not s.counts.get("card") and not s.counts.get("iban")


def test_dates_times_and_amounts_are_not_pii():
    text = "on 2024-01-15 at 10:30:45 I paid 1234.56 for order 98765"
    assert scrub(text).text == text


def test_redact_never_shows_pii_and_is_short():
    shown = redact("write to a@b.com " + "x" * 200)
    assert "a@b.com" not in shown and len(shown) <= 80


@given(st.text(max_size=200))
def test_scrub_is_idempotent_and_total(text):
    once = scrub(text)
    assert scrub(once.text).text == once.text
    assert all(n > 0 for n in once.counts.values())
