"""The ledger head, exported outside the store every few seconds (and once more at stop)."""

from __future__ import annotations

import functools
from pathlib import Path

from services.kernel.periodic import Periodic
from services.kernel.store import Store
from services.monitor import audit


def head_exporter(store: Store, path: Path, every_s: float) -> Periodic:
    """Writes the ledger head to a file beside the store, so a truncated tail is detectable."""
    export = functools.partial(audit.export_head, store, path)
    return Periodic(export, every_s, "ledger head export", final=export)
