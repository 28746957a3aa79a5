"""PII detection and scrubbing: emails, phone numbers, card numbers (Luhn), IBANs (mod-97), IPs.

Each finding is replaced by a typed placeholder (<EMAIL>, <PHONE>, <CARD>, <IBAN>, <IP>) and counted
per kind. Kinds run in a fixed order so that a longer, validated kind (an IBAN, a card number) is
replaced before a looser pattern (a phone number) could claim part of it.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4})(?![\w])"
)
PLACEHOLDERS = {"email": "<EMAIL>", "iban": "<IBAN>", "card": "<CARD>", "ip": "<IP>", "phone": "<PHONE>"}


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35, value mod 97 == 1."""
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _card(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _ip(m: re.Match[str]) -> bool:
    try:
        ipaddress.ip_address(m.group())
    except ValueError:
        return False
    return True


def _phone(m: re.Match[str]) -> bool:
    return 7 <= len(re.sub(r"\D", "", m.group())) <= 15


def _always(_m: re.Match[str]) -> bool:
    return True


Validator = Callable[[re.Match[str]], bool]
DETECTORS: tuple[tuple[str, re.Pattern[str], Validator], ...] = (
    ("email", EMAIL, _always),
    ("iban", IBAN, lambda m: iban_valid(m.group())),
    ("card", CARD, _card),
    ("ip", IPV4, _ip),
    ("ip", IPV6, _ip),
    ("phone", PHONE, _phone),
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


# Every detector needs one of these: an @ (email), a colon (IPv6), or digits close together (cards,
# IBANs, phones: 7+ digits with separators; IPv4: digit-dot-digit). Most rows have none and skip all.
_TRIGGER = re.compile(r"@|:|\d[\d .()+/-]{5,}\d|\d\.\d|\d[A-Z0-9 ]{11,}")


def scrub(text: str) -> Scrubbed:
    """Replace every detected PII value by its typed placeholder."""
    if not _TRIGGER.search(text):
        return Scrubbed(text)
    counts: Counter[str] = Counter()
    for kind, pattern, valid in DETECTORS:
        text = pattern.sub(_replacer(kind, valid, counts), text)
    return Scrubbed(text, dict(counts))


def _replacer(kind: str, valid: Validator, counts: Counter[str]) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        if not valid(m):
            return m.group()
        counts[kind] += 1
        return PLACEHOLDERS[kind]

    return replace


def redact(text: str, limit: int = 80) -> str:
    """A text safe to show in an example: PII scrubbed, shortened."""
    shown = scrub(text).text
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
