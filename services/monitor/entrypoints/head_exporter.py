"""A background thread that exports the ledger head outside the store every few seconds."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from services.kernel.store import Store
from services.monitor import audit

log = logging.getLogger(__name__)


class HeadExporter:
    """Writes the ledger head to a file beside the store, so a truncated tail is detectable."""

    def __init__(self, store: Store, path: Path, every_s: float) -> None:
        self.store, self.path, self.every_s = store, path, every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                audit.export_head(self.store, self.path)
            except Exception as err:  # noqa: BLE001 - keep exporting; the next tick retries
                log.error("ledger head export failed: %s", err)

    def start(self) -> None:
        """Start exporting."""
        self._thread = threading.Thread(target=self._loop, name="ledger-head", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Export once more and stop."""
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        audit.export_head(self.store, self.path)
