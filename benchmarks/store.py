"""`tuneline bench store`: what durable SQLite commits cost. A consumer's transaction (an inbox row and
an outbox row) committed through a real Store, `synchronous` FULL against NORMAL, alternating arms."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console

from benchmarks.report import write_result
from services.kernel.settings import Settings
from services.kernel.store import Store, inbox, outbox, utcnow


def _commits_per_s(mode: str, transactions: int) -> float:
    with tempfile.TemporaryDirectory(prefix="tuneline-bench-store-") as folder:
        store = Store.open(Settings(state_dir=Path(folder)).replace(store_sqlite_synchronous=mode), "bench")
        start = time.perf_counter()
        for i in range(transactions):
            with store.session() as s:
                s.execute(sa.insert(inbox).values(consumer="bench", event_id=str(uuid.uuid4()), event_type="x", topic="t",
                                                  partition=0, offset=i, processed_at=utcnow()))
                s.execute(sa.insert(outbox).values(event_id=str(uuid.uuid4()), event_type="x", topic="t", key=b"k",
                                                   value=b"v" * 300, headers=[], created_at=utcnow()))
        rate = transactions / (time.perf_counter() - start)
        store.engine.dispose()
        return rate


def run_bench(out: str = "", transactions: int = 2000, reps: int = 2) -> dict[str, object]:
    """Commits/s for each mode, `reps` alternating repetitions."""
    rates: dict[str, list[float]] = {"FULL": [], "NORMAL": []}
    for _ in range(reps):
        for mode in rates:
            rates[mode].append(_commits_per_s(mode, transactions))
    result: dict[str, object] = {"transactions": transactions, "commits_per_s": rates,
                                 "normal_over_full": sum(rates["NORMAL"]) / sum(rates["FULL"])}
    path = write_result("store", result, Path(out) if out else None)
    Console().print(f"commits/s FULL {[round(r) for r in rates['FULL']]}, NORMAL {[round(r) for r in rates['NORMAL']]} -> {path}")
    return result
