"""A seeded PII corpus: `n` values of every kind, valid by their own rules, each in a banking sentence.

Used by `tuneline bench pii` and the unit tests (it lives here, not under tests/, because the installed
`tuneline` command can import benchmarks/ but not tests/).

Values are built from their definitions, not copied from examples: IBANs for every country of the
SWIFT registry (structure from python-stdnum's copy of it, check digits computed), phone numbers of
every region libphonenumber knows (its example number with the last digits drawn, kept only when
still valid), cards with a Luhn digit, Aadhaar numbers with a Verhoeff digit, SSNs outside SSA's
unissued ranges, NINOs with allocated prefixes. Each sample also says what the scrubbed sentence must
be, so a test checks the kind, the placeholder and that nothing around the value was touched.
`hard_negatives` are near misses (bad checksums, amounts, dates, PINs) that must come through as they
are. The same seed gives the same corpus.
"""

from __future__ import annotations

import importlib.resources
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, verhoeff

from services.kernel.pii import NATIONAL_REGIONS, PLACEHOLDERS


@dataclass(frozen=True)
class Sample:
    """One seeded value in its sentence, and the sentence as the scrubber must leave it."""

    kind: str
    form: str
    value: str
    text: str

    @property
    def expected(self) -> str:
        """The sentence with the value replaced by its kind's placeholder."""
        return self.text.replace(self.value, PLACEHOLDERS[self.kind])


TEMPLATES = {
    "email": ["Please send my statements to {} from now on.", "I never got the verification email at {}, can you resend it?",
              "My email changed to {} last week."],
    "iban": ["I want to transfer 250 euros to {} today.", "Is {} the right IBAN for my salary?",
             "The refund should go to my account {} please."],
    "phone": ["You can call me back on {} after 5pm.", "My new mobile number is {}, please update it.",
              "I got a text from {} asking for my PIN, was that you?"],
    "card": ["My card {} was declined at the supermarket.", "Someone used card number {} without my permission!",
             "Please cancel {} because I lost it."],
    "aadhaar": ["My Aadhaar number is {} for the KYC check.", "Can I verify my account with Aadhaar {}?",
                "The app rejected {} when I uploaded my ID."],
    "ssn": ["My SSN is {} if you need it for the tax form.", "Here is my social security number: {}.",
            "For the W-9 my ssn is {} and my card is pending."],
    "nino": ["My National Insurance number is {} for the ISA.", "NI number {} is on my payslip.",
             "Do you need {} to open the account?"],
    "ip": ["I logged in from {} and got a fraud warning.", "Why does the app block my IP {}?",
           "There was a login from {} that was not me."],
    "address": ["Please send my new card to {}.", "I moved to {} last month, how do I update my address?",
                "My card was delivered to {} but I don't live there."],
    "name": ["Hi, my name is {} and my card was stolen.", "I am writing for Mrs {} who cannot log in.",
             "Dear {}, thank you for the quick refund."],
}
FIRST = ["James", "Mary", "Oliver", "Amelia", "José", "Zoë", "Łukasz", "Aoife", "Siobhán", "Priya", "Wei", "Oluwaseun",
         "Mary-Jane", "Fatima", "Mohammed", "Chloé", "Sven", "Hiroshi", "Ana", "Dmitri"]
LAST = ["Smith", "Jones", "O'Brien", "MacDonald", "García", "Müller", "Nowak", "Sharma", "Zhang", "Adeyemi", "Watson",
        "Smith-Jones", "Kowalski", "Nguyen", "Rossi", "DiCaprio", "Johansson", "Tanaka", "Silva", "Ivanov"]
STREETS = ["Baker", "High", "Church", "Victoria", "Station", "Mill", "Oak Tree", "Elm", "Maple", "Queen", "King's", "Park",
           "St John's", "Old Kent", "Green Lanes"]
STREET_TYPES = ["Street", "St", "Road", "Rd", "Avenue", "Ave", "Lane", "Drive", "Close", "Crescent", "Way", "Court",
                "Place", "Terrace", "Boulevard", "Gardens"]
TOWNS = ["London", "Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff", "Springfield", "Austin", "Portland",
         "San Diego", "New York", "Salt Lake City"]
UK_AREAS = ["SW", "NW", "EC", "WC", "M", "B", "L", "G", "EH", "CF", "BS", "LS", "OX", "CB", "N", "E", "SE", "W"]
US_STATES = ["CA", "TX", "NY", "IL", "OR", "WA", "MA", "FL", "UT", "CO"]
_POSTCODE_INWARD = "ABDEFGHJLNPQRSTUWXYZ"
_NINO_FIRST, _NINO_SECOND = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"


def _iban_structures() -> list[tuple[str, str]]:
    text = importlib.resources.files("stdnum").joinpath("iban.dat").read_text()
    return re.findall(r'^([A-Z]{2}) .*?bban="([^"]+)"', text, re.MULTILINE)


def _bban(rng: random.Random, structure: str) -> str:
    alphabet = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    return "".join("".join(rng.choices(alphabet[t], k=int(n))) for n, t in re.findall(r"(\d+)!([nac])", structure))


def _iban(rng: random.Random, i: int) -> tuple[str, str]:
    country, structure = IBAN_STRUCTURES[i % len(IBAN_STRUCTURES)]
    while True:  # some countries add national check digits: draw until those hold too
        bban = _bban(rng, structure)
        value = country + iban.calc_check_digits(country + "00" + bban) + bban
        if iban.is_valid(value):
            return ("compact", value) if i % 3 == 0 else ("grouped", iban.format(value))


def _phone(rng: random.Random, i: int) -> tuple[str, str]:
    form = ("international", "e164", "00", "national")[i % 4]
    regions = (*NATIONAL_REGIONS, "US", "CA") if form == "national" else _REGIONS
    for k in range(i, i + 10 * len(regions)):
        number = _draw_number(rng, regions[k % len(regions)], k)
        if number is not None:
            break
    assert number is not None
    fmt = phonenumbers.PhoneNumberFormat
    if form == "national":
        return form, phonenumbers.format_number(number, fmt.NATIONAL)
    international = phonenumbers.format_number(number, fmt.INTERNATIONAL)
    return form, {"international": international, "e164": phonenumbers.format_number(number, fmt.E164),
                  "00": "00" + international[1:]}[form]


def _draw_number(rng: random.Random, region: str, k: int) -> phonenumbers.PhoneNumber | None:
    kind = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)[k % 2]
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return None
    national = str(example.national_number)
    drawn = national[:-3] + "".join(rng.choices("0123456789", k=3))
    number = phonenumbers.parse(f"+{example.country_code}{drawn}", None)
    return number if phonenumbers.is_valid_number(number) else None


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (1 if i % 2 else 2)
        total += d - 9 if d > 9 else d
    return str(-total % 10)


def _card(rng: random.Random, i: int) -> tuple[str, str]:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16)])
    body = prefix + "".join(rng.choices("0123456789", k=length - len(prefix) - 1))
    digits = body + _luhn_digit(body)
    if i % 3 == 0:
        return "compact", digits
    sep = " " if i % 3 == 1 else "-"
    groups = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
    return "grouped", sep.join(digits[sum(groups[:j]):sum(groups[:j + 1])] for j in range(len(groups)))


def _aadhaar(rng: random.Random, i: int) -> tuple[str, str]:
    while True:
        body = rng.choice("23456789") + "".join(rng.choices("0123456789", k=10))
        digits = body + verhoeff.calc_check_digit(body)
        if digits != digits[::-1]:
            break
    return ("compact", digits) if i % 2 else ("grouped", f"{digits[:4]} {digits[4:8]} {digits[8:]}")


def _ssn(rng: random.Random, i: int) -> tuple[str, str]:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    digits = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    form = ("dashed", "spaced", "bare")[i % 3]
    return form, {"dashed": f"{digits[:3]}-{digits[3:5]}-{digits[5:]}", "spaced": f"{digits[:3]} {digits[3:5]} {digits[5:]}",
                  "bare": digits}[form]


def _nino(rng: random.Random, i: int) -> tuple[str, str]:
    while (prefix := rng.choice(_NINO_FIRST) + rng.choice(_NINO_SECOND)) in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        pass
    digits, suffix = f"{rng.randint(0, 999999):06d}", rng.choice("ABCD")
    spaced = f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return ("spaced", spaced) if i % 2 else ("compact", spaced.replace(" ", ""))


def _ip(rng: random.Random, i: int) -> tuple[str, str]:
    if i % 2:
        return "v4", ".".join(str(rng.randint(1, 254)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    return "v6", ":".join(groups) if i % 4 == 0 else f"2001:db8::{groups[0]}:{groups[1]}"


def _address(rng: random.Random, i: int) -> tuple[str, str]:
    street = f"{rng.randint(1, 999)}{rng.choice(['', '', 'A', 'B'])} {rng.choice(STREETS)} {rng.choice(STREET_TYPES)}"
    postcode = f"{rng.choice(UK_AREAS)}{rng.randint(1, 19)} {rng.randint(0, 9)}{''.join(rng.choices(_POSTCODE_INWARD, k=2))}"
    town = rng.choice(TOWNS)
    form = ("uk", "us", "street", "postcode")[i % 4]
    return form, {"uk": f"{street}, {town} {postcode}", "us": f"{street}, {town}, {rng.choice(US_STATES)} {rng.randint(10000, 99999)}",
                  "street": street, "postcode": postcode}[form]


def _email(rng: random.Random, i: int) -> tuple[str, str]:
    user = f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{rng.randint(1, 99)}"
    user = user.encode("ascii", "ignore").decode().replace("'", "")
    return "plain", f"{user}@{rng.choice(['gmail.com', 'outlook.co.uk', 'mail.example.org', 'yahoo.fr'])}"


def _name(rng: random.Random, i: int) -> tuple[str, str]:
    return ("full", f"{rng.choice(FIRST)} {rng.choice(LAST)}") if i % 2 else ("surname", rng.choice(LAST))


IBAN_STRUCTURES = _iban_structures()
_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
GENERATORS: dict[str, Callable[[random.Random, int], tuple[str, str]]] = {
    "email": _email, "iban": _iban, "phone": _phone, "card": _card, "aadhaar": _aadhaar, "ssn": _ssn,
    "nino": _nino, "ip": _ip, "address": _address, "name": _name,
}


def corpus(n: int = 200, seed: int = 19) -> list[Sample]:
    """`n` samples of every kind, each value valid, each in one of the kind's sentences."""
    rng = random.Random(seed)
    return [sample for kind in GENERATORS for sample in _samples(rng, kind, n)]


def _samples(rng: random.Random, kind: str, n: int) -> Iterator[Sample]:
    for i in range(n):
        form, value = GENERATORS[kind](rng, i)
        template = TEMPLATES[kind][i % len(TEMPLATES[kind])]
        if kind == "name" and form == "surname" and not template.startswith("I am"):
            template = "I am writing for Mr {} about a refund."  # a bare surname needs an honorific
        yield Sample(kind, form, value, template.format(value))


def uncued_names(n: int = 200, seed: int = 19) -> list[Sample]:
    """Full names with no cue before them: what a pattern cannot find (measured, not required)."""
    rng = random.Random(seed)
    return [Sample("name", "no cue", v, f"I sent 40 pounds to {v} yesterday and it has not arrived.")
            for v in (f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(n))]


def near_misses(n: int = 200, seed: int = 19) -> list[Sample]:
    """Seeded IBANs, cards and Aadhaar numbers with their last digit changed, so the checksum fails."""
    out = []
    for s in corpus(n, seed):
        if s.kind in ("iban", "card", "aadhaar"):
            i = max(k for k, ch in enumerate(s.value) if ch.isdigit())
            bad = s.value[:i] + str((int(s.value[i]) + 1) % 10) + s.value[i + 1:]
            out.append(Sample(s.kind, s.form, bad, s.text.replace(s.value, bad)))
    return out


def hard_negatives(seed: int = 19) -> list[str]:
    """Banking sentences with numbers that are not PII: each must come through the scrubber unchanged."""
    rng = random.Random(seed)
    bad_card = "4111 1111 1111 1112"
    body = "2" + "".join(rng.choices("0123456789", k=10))
    bad_aadhaar = body + str((int(verhoeff.calc_check_digit(body)) + 1) % 10)
    return [
        "my pin is 1234 and it still does not work", "My card ending in 4321 was charged twice.",
        "I paid £1,250.00 on 2024-01-15 at 10:30 and it is still pending.", "I made 3 transactions of $20 on 15/01/2024.",
        "The exchange rate was 1.1634 instead of 1.17.", "I was charged 12 times for order 98765.",
        "My 2FA code 482913 expired before I could use it.", f"The card number {bad_card} is not accepted.",
        "I want to move 10000 euros to savings by 31.12.2024.", f"Is {bad_aadhaar[:4]} {bad_aadhaar[4:8]} {bad_aadhaar[8:]} valid?",
        "My SSN 000-12-3456 was rejected (that is a test number).", "Is 666-12-3456 a real social security number?",
        "The IBAN GB82 WEST 1234 5698 7654 33 bounced back.", "Reference QQ 12 34 56 C came up in the letter.",
        "I have 2 cards on the way and 1 lost at the station.", "Sort code 20-00-00 is the one on my statement.",
        "Call me at 10:45 or 11:30 please.", "I topped up 500£ and 25 EUR at 09:15:30.",
        "my name is on the card but the app shows it wrong", "Dear Sir, my top up failed three times.",
        "I earn 45,000 a year and want a 12 month loan of 7,000.", "Version 4.2.1 of the app crashes on login.",
        "I was charged on 01.02.2024 and again on 05-11-2023.", "Transaction 0001234567 failed twice.",
        "Order 1234567890 was refunded on 03 04 2024.",
    ]
