"""PII detection and scrubbing: the one scrubber for ingested rows and logged inference text.

Each finding is replaced by a typed placeholder, `<KIND>` (<EMAIL>, <IBAN>, <PHONE>, <CARD>, <AADHAAR>,
<SSN>, <NINO>, <IP>, <ADDRESS>, <NAME>), and counted per kind. A regex finds candidates; a validator
keeps only those that pass the kind's checksum or numbering rules:

- phone: libphonenumber (`phonenumbers`). With a `+` or `00` prefix, any country, if the length is
  possible for that country; without one, the North American 3-3-4 shape (and India's 5-5 mobiles),
  or a trunk-0 number valid in one of `NATIONAL_REGIONS` (dates such as 01.02.2024 excepted).
- IBAN: every country of the SWIFT registry: its length and BBAN format, and mod-97 (`python-stdnum`).
  Card: 13-19 digits, Luhn. Aadhaar: 12 digits, not starting 0 or 1, Verhoeff (`python-stdnum`).
- SSN: the AAA-GG-SSSS pattern with SSA's unissued areas, groups and serials refused (there is no
  check digit); nine bare digits only after "SSN" or "social security". NINO: HMRC's prefix and
  suffix rules (no check digit either).
- address: a conservative pattern (house number, capitalised street name, a street-type word, and an
  optional town and UK postcode or US state and ZIP), and UK postcodes or "Town, ST 12345" alone.
- name: only when a cue introduces it ("my name is", "Mr", "Dear", ...); a name with no cue needs a
  language model and is not found.

Kinds run in a fixed order, so a longer, validated kind (an IBAN, an international phone number, a
card) is replaced before a looser pattern could claim part of it; placeholders contain no digits, so
scrubbing twice changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers
from google.protobuf.message import DecodeError
from stdnum import iban as stdnum_iban
from stdnum.in_ import aadhaar
from stdnum.us import ssn as us_ssn
from tuneline.events.v1 import events_pb2 as ev

Span = tuple[int, int]
# A finder gets a candidate match and returns the span to replace (all of it, a prefix, or one
# group), or None to leave the text alone.
Finder = Callable[[re.Match[str]], Span | None]

# Regions whose national format starts with a trunk 0 (0xx...), tried for numbers written without a
# country code; NANP numbers (US, CA) are recognised by their 3-3-4 shape instead. Every other country
# is found only with its + or 00 prefix: a bare digit run is too ambiguous to call a phone number.
NATIONAL_REGIONS = ("GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "IT", "AU", "NZ", "IN", "ZA", "JP", "CN")
KINDS = ("email", "iban", "phone", "card", "aadhaar", "ssn", "nino", "ip", "address", "name")
PLACEHOLDERS = {kind: f"<{kind.upper()}>" for kind in KINDS}

# A number is a whole run of digit groups: "1234 5678 9012" inside a longer run is not an Aadhaar.
_RUN_START, _RUN_END = r"(?<![\d-])(?<!\d[ .])", r"(?![\d-]|[ .]\d)"
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
# After a + the number may be followed by other digits ("+44 20 7946 0958 2 times"): the longest
# possible prefix is the phone. After 00 (which also starts account and reference numbers) only a
# whole run of digit groups is.
PHONE_PLUS = re.compile(r"(?<![\w+])\+[1-9][\d ()./-]{5,22}\d(?!\w)")
PHONE_00 = re.compile(rf"(?<![\w+]){_RUN_START}00[1-9][\d ()./-]{{5,22}}\d(?!\w){_RUN_END}")
CARD = re.compile(r"(?<![\d+-])\d(?:[ -]?\d){12,18}(?![\d-])")
AADHAAR = re.compile(rf"{_RUN_START}[2-9]\d{{3}}([ -]?)\d{{4}}\1\d{{4}}{_RUN_END}")
SSN = re.compile(
    rf"{_RUN_START}\d{{3}}([- ])\d{{2}}\1\d{{4}}{_RUN_END}"
    r"|(?i:\b(?:ssn|social security)\b)\D{0,24}(?P<bare>(?<!\d)\d{9})(?!\d)"
)
NINO = re.compile(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", re.IGNORECASE)
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
PHONE_NATIONAL = re.compile(rf"(?<![\w+.]){_RUN_START}\(?\d[\d ().-]{{5,20}}\d(?!\w){_RUN_END}")
# 01.02.2024, 05 11 2023, 01-15-2024: trunk-0 numbers of eight digits, valid in some regions, but dates.
_DATE = re.compile(r"\d{1,2}([./ -])\d{1,2}\1(?:19|20)\d{2}")
# North American numbers written as phone numbers ((201) 555-0123, 201-555-0123: any digits), or
# ten bare digits that follow the NANP plan (area code and exchange start 2-9); Indian mobiles 5-5.
_NANP = re.compile(r"(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}|1?[2-9]\d{2}[2-9]\d{6}|[6-9]\d{4}[ -]?\d{5}")

_STREET_TYPE = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Way|Close|Crescent"
                r"|Terrace|Square|Sq|Gardens|Grove|Parkway|Pkwy|Highway|Hwy|Mews|Row|Hill|Walk)\b")
_UK_POSTCODE = r"(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2}|GIR ?0AA)\b"
_US_STATE = (r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY"
             r"|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY) \d{5}(?:-\d{4})?\b")
_TOWN = r"[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}"
ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?,? (?:[A-Z][a-z'-]+ ){{1,3}}{_STREET_TYPE}"
    rf"(?:,? {_TOWN}(?=[,.!? ]|$))?(?:,? (?:{_UK_POSTCODE}|{_US_STATE}))?"
    rf"|\b{_TOWN},? {_US_STATE}|\b{_UK_POSTCODE}"
)
# Up to three words after a cue; the name is the leading run of those that start with a capital.
NAME = re.compile(
    r"(?:\b(?i:my name is|my name's|name:|account holder:?|dear|regards,|sincerely,)"
    r"|\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\b\.?) +(?P<name>[^\W\d_]+(?:['-][^\W\d_]+)*(?: [^\W\d_]+(?:['-][^\W\d_]+)*){0,2})"
)
_NOT_NAMES = {"Sir", "Madam", "Sirs", "Team", "Customer", "Support", "All", "Bank", "Manager", "Friend", "Colleague",
              "Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof"}
# HMRC never allocates D, F, I, Q, U, V as first letter (nor O second), nor these prefixes.
_NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616 for every country of the SWIFT registry: its length and BBAN format, mod 97 == 1."""
    s = candidate.replace(" ", "").upper()
    if not (15 <= len(s) <= 34 and s.isascii() and s.isalnum()):
        return False
    # mod 97 first: it is cheap and refuses 96 in 97 wrong candidates before the registry lookup.
    # The national check digits (check_country) are left out: for some countries python-stdnum also
    # looks the bank up in a list of its own, which would miss IBANs of banks newer than the list.
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1 and stdnum_iban.is_valid(s, check_country=False)


def nino_valid(candidate: str) -> bool:
    """A UK National Insurance number: two allocated prefix letters, six digits, suffix A-D."""
    s = candidate.replace(" ", "").upper()
    return (re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", s) is not None
            and s[:2] not in _NINO_BAD_PREFIXES)


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _card(s: str) -> bool:
    digits = _digits(s)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _aadhaar(s: str) -> bool:
    return aadhaar.is_valid(_digits(s))


def _ssn(s: str) -> bool:
    d = _digits(s)
    return us_ssn.is_valid(f"{d[:3]}-{d[3:5]}-{d[5:]}")


def _ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def _intl_phone(s: str) -> bool:
    if not 7 <= len(_digits(s)) <= 17:  # 15 digits (E.164) + a 00 prefix
        return False
    try:
        number = phonenumbers.parse("+" + s[2:] if s.startswith("00") else s, None)
    except phonenumbers.NumberParseException:
        return False
    # A + is enough evidence for a number of a possible length; 00 also starts other numbers.
    return phonenumbers.is_valid_number(number) if s.startswith("00") else phonenumbers.is_possible_number(number)


def _national_phone(s: str) -> bool:
    if _DATE.fullmatch(s):
        return False
    if _NANP.fullmatch(s):
        return True
    if not (s.startswith("0") or s.startswith("(0")) or s.startswith("00") or not 8 <= len(_digits(s)) <= 12:
        return False
    return any(_valid_in(s, region) for region in NATIONAL_REGIONS)


def _valid_in(s: str, region: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(s, region))
    except phonenumbers.NumberParseException:
        return False


def _whole(valid: Callable[[str], bool]) -> Finder:
    return lambda m: m.span() if valid(m.group()) else None


def _longest_prefix(valid: Callable[[str], bool]) -> Finder:
    """The longest valid prefix ending at a word's end: a greedy pattern may run into the next word."""

    def find(m: re.Match[str]) -> Span | None:
        s = m.group()
        ends = [i + 1 for i in range(len(s) - 1, -1, -1) if s[i].isalnum() and (i + 1 == len(s) or not s[i + 1].isalnum())]
        return next(((m.start(), m.start() + end) for end in ends if valid(s[:end])), None)

    return find


def _ssn_finder(m: re.Match[str]) -> Span | None:
    group = "bare" if m.group("bare") else 0
    return m.span(group) if _ssn(m.group(group)) else None


def _name(m: re.Match[str]) -> Span | None:
    words = m.group("name").split(" ")
    cut = next((i for i, w in enumerate(words) if not w[0].isupper()), len(words))
    if cut == 0 or words[0] in _NOT_NAMES:
        return None
    start = m.start("name")
    return start, start + len(" ".join(words[:cut]))


# What a detector needs in a text before it is worth running: an @ (email), a colon (IPv6), a name
# cue, or digits (two close together, or one before a capital: every number, a house number before
# its street). Most rows have none and skip every pattern.
_NUMBERISH = re.compile(r"\d(?:.{0,2}\d|[A-Za-z]? [A-Z])")
# Every cue of NAME, factored by first letter (a superset): a leading character class lets `re` skip
# ahead, 2-3x faster on banking77 than the same words as one alternation.
_CUE = re.compile(r"[NnHhDdRrSs](?:ame|older|ear|egards|incerely)|[MDP](?:rs?|s|iss|x|rof)\b")


def _needs(text: str) -> dict[str, bool]:
    return {"@": "@" in text, ":": ":" in text, "digits": _NUMBERISH.search(text) is not None,
            "cue": _CUE.search(text) is not None}


@dataclass(frozen=True)
class Detector:
    """One kind of PII: what a text needs for it, where its candidates are, and which of them count."""

    kind: str
    needs: str
    pattern: re.Pattern[str]
    find: Finder


DETECTORS: tuple[Detector, ...] = (
    Detector("email", "@", EMAIL, lambda m: m.span()),
    Detector("iban", "digits", IBAN, _longest_prefix(iban_valid)),
    Detector("phone", "digits", PHONE_PLUS, _longest_prefix(_intl_phone)),
    Detector("phone", "digits", PHONE_00, _whole(_intl_phone)),
    Detector("card", "digits", CARD, _longest_prefix(_card)),  # a CVV may follow the number
    Detector("aadhaar", "digits", AADHAAR, _whole(_aadhaar)),
    Detector("ssn", "digits", SSN, _ssn_finder),
    Detector("nino", "digits", NINO, _whole(nino_valid)),
    Detector("ip", "digits", IPV4, _whole(_ip)),
    Detector("ip", ":", IPV6, _whole(_ip)),
    Detector("phone", "digits", PHONE_NATIONAL, _whole(_national_phone)),
    Detector("address", "digits", ADDRESS, lambda m: m.span()),
    Detector("name", "cue", NAME, _name),
)


@dataclass(frozen=True)
class Scrubbed:
    """A text with its PII replaced, and how many of each kind were found."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        """Whether any PII was found."""
        return bool(self.counts)


def scrub(text: str) -> Scrubbed:
    """Replace every detected PII value by its typed placeholder."""
    present = _needs(text)
    if not any(present.values()):
        return Scrubbed(text)
    counts: Counter[str] = Counter()
    for detector in DETECTORS:
        if present[detector.needs]:  # placeholders add no digit, @, colon or cue: still right after a pass
            text = _replace(detector, text, counts)
    return Scrubbed(text, dict(counts))


def _replace(detector: Detector, text: str, counts: Counter[str]) -> str:
    """One detector over the text. After a replacement the scan goes on where the replaced span
    ended, not where the candidate did, so a value that a greedy candidate ran into is still found."""
    parts: list[str] = []
    pos = 0
    while (m := detector.pattern.search(text, pos)) is not None:
        span = detector.find(m)
        if span is None:  # look again one character on: a refused candidate may hide a shorter one
            parts.append(text[pos : m.start() + 1])
            pos = m.start() + 1
            continue
        parts += [text[pos : span[0]], PLACEHOLDERS[detector.kind]]
        counts[detector.kind] += 1
        pos = span[1]
    return "".join(parts) + text[pos:] if parts else text


def redact(text: str, limit: int = 80) -> str:
    """A text safe to show in an example: PII scrubbed, shortened."""
    shown = scrub(text).text
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def logged_without_text(payload: bytes) -> bytes:
    """An inference.logged payload without its request text (and without unknown fields, which could hold
    some); b"" for bytes that are not one, since nothing says what they hold."""
    try:
        message = ev.InferenceLogged.FromString(payload)
    except DecodeError:
        return b""
    message.DiscardUnknownFields()
    message.ClearField("text")
    return message.SerializeToString(deterministic=True)
