"""Data minimisation: what a snapshot keeps of its source, recorded in the certificate, and the keyed
pseudonyms that replace the values a goal asks to hash.

A snapshot keeps only the text, the label and (when the publisher or goal names one) the slice; every
other column of the source is left behind. The `minimisation` gate says which, so an auditor reads in
the signed registration what the platform holds. A goal can ask for the slice values to be dropped or
hashed (`data.slice_values`); hashing keeps per-slice evaluation (the same value always maps to the
same pseudonym) without keeping the value.

Why a keyed hash (HMAC-SHA256) and not a plain digest: slice values are few and guessable (regions,
customer tiers, account ids), so an unkeyed digest is reversed by hashing every candidate; without
the ingest's key it is not.
"""

from __future__ import annotations

import hashlib
import hmac

from services.ingest.domain.certificate import GateOutcome
from services.ingest.domain.rows import FieldSpec

_PREFIX = "h-"


def pseudonym(key: bytes, value: str) -> str:
    """The value's pseudonym: `h-` and 16 hex digits of HMAC-SHA256 under the key; "" stays ""."""
    if not value:
        return value
    return _PREFIX + hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]


def minimisation_gate(columns: set[str], fields: FieldSpec, slice_values: str, max_examples: int = 5) -> GateOutcome:
    """What the snapshot keeps of the source's columns and what it leaves behind (always passes: it records)."""
    kept = [f"text ({fields.text})", f"label ({fields.label})"]
    if fields.slice:
        kept.append(f"slice ({fields.slice}{', as keyed pseudonyms' if slice_values == 'hash' else ''})")
    dropped = sorted(columns - set(fields.required()))
    reason = f"kept {', '.join(kept)}"
    if dropped:
        shown = ", ".join(dropped[:20]) + (f" and {len(dropped) - 20} more" if len(dropped) > 20 else "")
        reason += f"; left behind {len(dropped)} other column{'s' if len(dropped) != 1 else ''}: {shown}"
    if slice_values == "drop":
        reason += "; the goal drops slice values"
    counts = {"source_columns": len(columns), "kept": len(fields.required()), "dropped": len(dropped),
              "hashed": int(bool(fields.slice) and slice_values == "hash")}
    return GateOutcome("minimisation", True, reason, counts, tuple(dropped[:max_examples]))
