"""Latency percentiles and throughput from measured timings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    requests: int            # batch-1 requests timed
    p50_ms: float
    p95_ms: float
    batch_size: int          # batch size of the throughput measurement
    throughput_rows_s: float


def latency_stats(batch1_seconds: Sequence[float], batch_size: int, rows: int, batched_seconds: float) -> LatencyStats:
    """p50/p95 of batch-1 request times (ms) and rows/s of the batched pass; NaN when nothing ran."""
    ms = np.asarray(batch1_seconds, dtype=np.float64) * 1000.0
    p50, p95 = (float(np.percentile(ms, 50)), float(np.percentile(ms, 95))) if len(ms) else (float("nan"),) * 2
    rate = rows / batched_seconds if rows and batched_seconds > 0 else float("nan")
    return LatencyStats(len(ms), p50, p95, batch_size, float(rate))
