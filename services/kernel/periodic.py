"""A function called every few seconds on a thread of its own, until the service stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Calls `fn` every `every_s` seconds on a daemon thread named `name`; `final`, when given, runs once
    more at stop. A failing call is logged and the next tick retries: the work is idempotent upkeep
    (exporting a head, sweeping expired text), never a step someone waits on."""

    def __init__(self, fn: Callable[[], object], every_s: float, name: str, final: Callable[[], object] | None = None) -> None:
        self.fn, self.every_s, self.name, self.final = fn, every_s, name, final
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.fn()
            except Exception as err:  # noqa: BLE001 - keep going; the next tick retries
                log.error("%s failed: %s", self.name, err)

    def start(self) -> None:
        """Start calling."""
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the call in progress (if any), then run `final`."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)
        if self.final is not None:
            self.final()
