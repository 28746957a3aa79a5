"""The monitor's instruments (docs/metrics.md): drift per window, consumer lag, the ledger's length and integrity.

Lag and the ledger's verification are computed by `MonitorGauges` on threads of their own (every
`monitor_lag_every_s` and `monitor_verify_every_s`) and exported as last computed, so a scrape never
waits on Kafka or on a chain recomputation (a lag read that failed exports no lag until the next one
succeeds); the ledger's length is read at each scrape. Drift windows count once their transaction commits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.kernel.bus.lag import consumer_lag
from services.kernel.metrics import Attributes, GaugeSet, meter, short_digest
from services.kernel.periodic import Periodic
from services.kernel.settings import Settings
from services.kernel.store import Store
from services.monitor import audit

log = logging.getLogger(__name__)
WINDOWS = meter().create_counter("tuneline.drift.windows", unit="{window}",
                                 description="Windows of live traffic judged for drift, by goal and verdict")
_lock = threading.Lock()
_shares: dict[tuple[str, str], float] = {}


def _drift_shares() -> list[tuple[float, Attributes]]:
    with _lock:
        return [(share, {"goal": goal, "adapter": short_digest(adapter)}) for (goal, adapter), share in _shares.items()]


SHARE = GaugeSet("tuneline.drift.share", "1", "Share of drifted features in the last judged window of a goal's adapter")
SHARE.add(_drift_shares)
LAG = GaugeSet("tuneline.bus.consumer.lag", "{message}", "Events a consumer group has yet to commit, over all Tuneline topics")
LENGTH = GaugeSet("tuneline.ledger.length", "{entry}", "Records in the audit ledger")
VERIFIED = GaugeSet("tuneline.ledger.verified", "1", "1 when the last verification found the ledger intact, 0 when broken")


def window_judged(session: Session, goal: str, adapter: str, drifted: bool, share: float) -> None:
    """One window judged in `session`: once it commits, count it and remember its share for the gauge.

    A transaction retried after a transient error, or rolled back, judges its windows again or never:
    only the committed judgement is counted.
    """
    def committed(_session: Session) -> None:
        WINDOWS.add(1, {"goal": goal, "drifted": "true" if drifted else "false"})
        with _lock:
            _shares[(goal, adapter)] = share
    sa.event.listen(session, "after_commit", committed, once=True)


FEEDBACK = meter().create_counter("tuneline.feedback.joined", unit="{feedback}",
                                  description="feedback.recorded joined to its prediction (counted once the join commits)")
_accuracy: dict[tuple[str, str], tuple[float, float]] = {}


def _live(which: int) -> list[tuple[float, Attributes]]:
    with _lock:
        return [(pair[which], {"goal": goal, "adapter": short_digest(adapter)}) for (goal, adapter), pair in _accuracy.items()]


ACCURACY = GaugeSet("tuneline.live.accuracy", "1", "Accuracy of the last closed window of ground truth of a goal's adapter")
ACCURACY.add(lambda: _live(0))
CALIBRATION = GaugeSet("tuneline.live.calibration_error", "1",
                       "Expected calibration error (10 bins) of the last closed window of ground truth of a goal's adapter")
CALIBRATION.add(lambda: _live(1))


def feedback_joined(joined: int) -> None:
    """Count feedback the matcher joined, in a transaction that committed."""
    FEEDBACK.add(joined)


def accuracy_window(goal: str, adapter: str, accuracy: float, ece: float) -> None:
    """Remember the last committed window's accuracy and calibration for the gauges."""
    with _lock:
        _accuracy[(goal, adapter)] = (accuracy, ece)


class MonitorGauges:
    """Computes consumer lag and verifies the ledger in the background; the gauges export the last results."""

    def __init__(self, settings: Settings, store: Store, lag_every_s: float, verify_every_s: float) -> None:
        self.settings, self.store = settings, store
        self._lag: dict[str, int] = {}
        self._verified: bool | None = None
        self._periodic = [Periodic(self.refresh_lag, lag_every_s, "consumer-lag"),
                          Periodic(self.verify, verify_every_s, "ledger-verify")]
        self._removers: list[Callable[[], None]] = []

    def refresh_lag(self) -> None:
        """Read every namespace group's lag now; when the broker does not answer, the gauge shows none rather than a stale one."""
        try:
            self._lag = consumer_lag(self.settings)
        except BaseException:
            self._lag = {}
            raise

    def verify(self) -> None:
        """Recompute the ledger's chain against the exported head now."""
        result = audit.verify_ledger(self.store, audit.read_exported_head(audit.head_file(self.settings.state_dir)))
        if not result.ok and self._verified is not False:
            log.critical("the audit ledger does not verify: first bad record %s: %s", result.first_bad_seq, result.problem)
        self._verified = result.ok

    def start(self) -> None:
        """Export the gauges and start computing."""
        self._removers = [LAG.add(lambda: [(float(v), {"group": g}) for g, v in self._lag.items()]),
                          LENGTH.add(lambda: [(float(audit.current_head(self.store).seq), {})]),
                          VERIFIED.add(lambda: [] if self._verified is None else [(1.0 if self._verified else 0.0, {})])]
        for p in self._periodic:
            p.start()

    def stop(self) -> None:
        """Stop computing and exporting."""
        for p in self._periodic:
            p.stop()
        for remove in self._removers:
            remove()
