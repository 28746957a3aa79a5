from hypothesis import given
from hypothesis import strategies as st

from services.kernel.pii import PLACEHOLDERS, iban_valid, luhn_valid, nino_valid, redact, scrub

VALID_CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011000000000004"]
INVALID_CARDS = ["4111 1111 1111 1112", "5500-0000-0000-0005", "6011000000000005"]
# Published example IBANs of several registry countries (SWIFT registry / national banks' examples).
VALID_IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606",
               "NL91ABNA0417164300", "BE68539007547034", "ES9121000418450200051332", "CH9300762011623852957",
               "SA0380000000608010167519", "BR1800360305000010009795493C1", "NO9386011117947"]
INVALID_IBANS = ["GB82 WEST 1234 5698 7654 33", "DE89370400440532013001", "NL91ABNA0417164301",
                 "XX82WEST12345698765432"]  # no such country


def test_checksums():
    assert all(luhn_valid(c.replace(" ", "").replace("-", "")) for c in VALID_CARDS)
    assert not any(luhn_valid(c.replace(" ", "").replace("-", "")) for c in INVALID_CARDS)
    assert all(iban_valid(i) for i in VALID_IBANS) and not any(iban_valid(i) for i in INVALID_IBANS)
    assert nino_valid("AB 12 34 56 C") and nino_valid("ce123456a")
    assert not any(nino_valid(n) for n in ("QQ123456C", "DA123456A", "AO123456A", "GB123456A", "AB123456E", "A1"))


def test_every_kind_is_scrubbed_and_counted():
    text = ("mail jane.doe+x@bank.co.uk, call +44 20 7946 0958 or (555) 123-4567, card 4111 1111 1111 1111, "
            "iban GB82 WEST 1234 5698 7654 32, from 10.0.0.1 and 2001:db8::1")
    s = scrub(text)
    assert s.counts == {"email": 1, "phone": 2, "card": 1, "iban": 1, "ip": 2}
    assert s.text == "mail <EMAIL>, call <PHONE> or <PHONE>, card <CARD>, iban <IBAN>, from <IP> and <IP>"
    for secret in ("jane.doe", "7946", "123-4567", "4111", "WEST", "10.0.0.1", "2001:db8"):
        assert secret not in s.text
    assert "<EMAIL>" in s.text and "<CARD>" in s.text and "<IBAN>" in s.text and "<IP>" in s.text


NEW_KINDS = [
    ("call +33 6 12 34 56 78 or 0033 1 23 45 67 89", "call <PHONE> or <PHONE>", "phone"),
    ("ring 020 7946 0958, +81 90-1234-5678 or +8613123456789", "ring <PHONE>, <PHONE> or <PHONE>", "phone"),
    ("to NL91ABNA0417164300 and to sa03 8000 0000 6080 1016 7519", "to <IBAN> and to <IBAN>", "iban"),
    ("my SSN is 536-90-4399, social security 536904399", "my SSN is <SSN>, social security <SSN>", "ssn"),
    ("NI number AB 12 34 56 C", "NI number <NINO>", "nino"),
    ("Aadhaar 2341 2341 2346 please", "Aadhaar <AADHAAR> please", "aadhaar"),
    ("send it to 221B Baker Street, London NW1 6XE today", "send it to <ADDRESS> today", "address"),
    ("ship to 42 Elm St, Springfield, IL 62704.", "ship to <ADDRESS>.", "address"),
    ("Hello, my name is Siobhán O'Brien and I am locked out", "Hello, my name is <NAME> and I am locked out", "name"),
    ("Dear Mr. McDonald, thanks", "Dear Mr. <NAME>, thanks", "name"),
]


def test_new_kinds_are_replaced_by_their_own_placeholder_and_nothing_else():
    for text, expected, kind in NEW_KINDS:
        s = scrub(text)
        assert s.text == expected, (text, s)
        assert set(s.counts) == {kind} and PLACEHOLDERS[kind] == f"<{kind.upper()}>"


def test_an_iban_is_cut_at_its_country_length_when_a_word_follows():
    assert scrub("DE89370400440532013000 BIC COBADEFFXXX").text == "<IBAN> BIC COBADEFFXXX"
    assert scrub("iban de89 3704 0044 0532 0130 00 please").text == "iban <IBAN> please"


def test_numbers_that_only_look_like_ids_are_left_alone():
    for text in ["my pin is 1234", "card ending 4321", "3 transactions of $20", "SSN 000-12-3456",
                 "is 666-12-3456 right", "Aadhaar 2341 2341 2347", "NINO QQ 12 34 56 C", "order 123456789",
                 "my name is wrong on the card", "Dear Sir, my top up failed", "I have 2 cards on the way",
                 "+1234567 points", "the code 0036 3893 4083 0650 was refused", "paid on 01.02.2024",
                 "due 05-11-2023", "ref 0001234567", "order 1234567890"]:
        assert scrub(text).text == text, scrub(text)


def test_an_aadhaar_inside_a_longer_digit_run_is_not_an_aadhaar():
    s = scrub("number 2341 2341 2346 7 here")
    assert "aadhaar" not in s.counts


def test_a_number_followed_by_more_digits_is_still_scrubbed():
    assert scrub("card 4111 1111 1111 1111 123 exp").text == "card <CARD> 123 exp"  # its security code
    assert scrub("I called +44 20 7946 0958 2 times").text == "I called <PHONE> 2 times"


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
