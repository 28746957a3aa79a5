"""Input checks for inference requests: what reaches the model is non-empty, bounded, visible text.

Decisions (documented in the issue): NUL and other control characters (except tab, newline and
carriage return) are rejected; zero-width and bidi format characters are rejected by default
("Trojan Source"-style text can render differently from what the model reads) or stripped when
ServingConfig.invisible_chars is "strip". Invalid UTF-8 never reaches this module: protobuf refuses
it at parse time and the server maps that refusal to INVALID_ARGUMENT.
"""

from __future__ import annotations

import re
import unicodedata

from services.deployer.serving.config import ServingConfig
from services.kernel.errors import InvalidInput

# Zero-width: ZWSP, ZWNJ, ZWJ, word joiner, invisible operators, BOM/ZWNBSP, soft hyphen, Mongolian VS.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e"
# Bidi controls: LRM, RLM, ALM, embeddings/overrides (LRE..RLO, PDF) and isolates (LRI..PDI).
BIDI = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_INVISIBLE = re.compile(f"[{ZERO_WIDTH}{BIDI}]")
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_GOAL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def check_goal(goal: str) -> str:
    """The goal name, or InvalidInput when it cannot be a goal."""
    if not _GOAL.match(goal):
        raise InvalidInput(f"goal {goal[:70]!r} is not a goal name (lowercase letters, digits, . _ -)")
    return goal


def clean_text(text: str, config: ServingConfig) -> str:
    """The text the model will read, or InvalidInput saying what is wrong with it."""
    if len(text) > config.max_text_chars:
        raise InvalidInput(f"text has {len(text)} characters; the limit is {config.max_text_chars}")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > config.max_text_bytes:
        raise InvalidInput(f"text has {size} UTF-8 bytes; the limit is {config.max_text_bytes}")
    _reject_controls(text)
    text = _handle_invisible(text, config)
    if not text.strip():
        raise InvalidInput("text is empty or only whitespace")
    return text


def _reject_controls(text: str) -> None:
    for i, ch in enumerate(text):
        if ch in _ALLOWED_CONTROLS:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise InvalidInput(f"text contains control character U+{ord(ch):04X} at position {i}")


def _handle_invisible(text: str, config: ServingConfig) -> str:
    found = _INVISIBLE.search(text)
    if found is None:
        return text
    if config.invisible_chars == "strip":
        return _INVISIBLE.sub("", text)
    ch = found.group()
    kind = "bidi control" if ch in BIDI else "zero-width character"
    raise InvalidInput(f"text contains {kind} U+{ord(ch):04X} at position {found.start()}",
                       hint="remove invisible formatting characters from the text")


def check_top_k(top_k: int, config: ServingConfig) -> int:
    """The number of labels to return (3 when unset), or InvalidInput."""
    if top_k < 0 or top_k > config.max_top_k:
        raise InvalidInput(f"top_k {top_k} is outside 0..{config.max_top_k}")
    return top_k or 3
