"""What an ingest runs on: the plan (sources, fields, policy from the goal) and the gates' limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from services.ingest.domain.certificate import GateOutcome, failed
from services.ingest.domain.rows import FieldSpec, Limits
from services.ingest.domain.uri import DatasetLocation


@dataclass(frozen=True)
class Policy:
    """Limits and thresholds of the gates (from IngestSettings)."""

    limits: Limits = Limits()
    max_bad_row_fraction: float = 0.0
    near_threshold: float = 0.7
    chunk_rows: int = 8192
    max_examples: int = 5

    @property
    def max_row_bytes(self) -> int:
        """The largest raw field or line a reader will hold (4x the text limit, at least 64 KiB)."""
        return max(4 * self.limits.max_text_bytes, 65_536)


@dataclass(frozen=True)
class Plan:
    """What to ingest and how, with everything a goal or the event decided."""

    dataset_name: str
    source: DatasetLocation
    eval_source: DatasetLocation | None = None
    fmt: str = ""
    fields: FieldSpec = FieldSpec()
    eval_fraction: float = 0.1
    seed: int = 17
    pii_action: str = "scrub"
    min_examples: int = 5
    known_labels: tuple[str, ...] = ()
    prior_evals: tuple[Path, ...] = ()
    # The goal's `data.slice_values` (keep, hash or drop) and, to hash, the ingest's pseudonym key.
    slice_values: str = "keep"
    pseudonym_key: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        # Fail closed: a goal that asks for pseudonyms never gets the raw values for want of a key.
        if self.slice_values == "hash" and self.fields.slice and not self.pseudonym_key:
            raise ValueError("slice values are to be hashed but the plan has no pseudonym key")


@dataclass(frozen=True)
class Certified:
    """The certificate, and the snapshot files when every gate passed."""

    certificate: list[GateOutcome]
    train: Path | None = None
    eval: Path | None = None
    train_rows: int = 0
    eval_rows: int = 0
    labels: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether every gate passed."""
        return not failed(self.certificate)
