"""The ingest service's settings (env prefix TUNELINE_, e.g. TUNELINE_MAX_TEXT_BYTES)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from services.kernel.settings import Settings


class IngestSettings(Settings):
    """Limits and policies of the ingest gates; defaults suit the bundled datasets."""

    # Local dataset paths must resolve (symlinks followed) inside one of these; empty means the
    # defaults: the current working directory and state_dir/inbox. The rest of the state folder
    # (stores, artifacts, keys, logs) is never a dataset root, even inside an allowed one.
    allowed_data_roots: list[Path] = Field(default_factory=list)
    # fsspec protocols besides local files that publishers may use (e.g. ["s3", "gs"]); none by default.
    allowed_url_schemes: list[str] = Field(default_factory=list)
    max_text_bytes: int = Field(10_000, ge=1)
    max_label_bytes: int = Field(200, ge=1)
    # A fraction of malformed rows tolerated before the schema gate fails (0: any bad row rejects).
    max_bad_row_fraction: float = Field(0.0, ge=0.0, le=1.0)
    pii_action: Literal["scrub", "reject"] = "scrub"
    min_examples_per_label: int = Field(5, ge=1)
    # Near duplicates: estimated Jaccard similarity of character 4-grams at or above this.
    near_duplicate_threshold: float = Field(0.7, gt=0.0, le=1.0)
    eval_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    split_seed: int = 17
    chunk_rows: int = Field(8192, ge=1)
    max_examples: int = Field(5, ge=0)

    def data_roots(self) -> list[Path]:
        """The allowed roots for local dataset paths."""
        return list(self.allowed_data_roots) or [Path.cwd(), self.state_dir / "inbox"]

    def denied_data_roots(self) -> list[Path]:
        """Folders no dataset is read from, although an allowed root holds them: the state folder."""
        return [self.state_dir]
