"""Expected calibration error and the reliability diagram's bins.

Equal-width bins over the top-1 confidence: bin k holds confidences in (k/B, (k+1)/B], the first
bin also holds 0. ECE = sum over bins of (rows in bin / all rows) * |accuracy - mean confidence|
(Guo et al., 2017). Empty bins contribute nothing and are reported with count 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_BINS = 15


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float   # mean confidence in the bin (NaN when empty)
    accuracy: float     # fraction correct in the bin (NaN when empty)


@dataclass(frozen=True)
class Calibration:
    ece: float
    rows: int
    bins: tuple[ReliabilityBin, ...]


def bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin of each confidence: (k/B, (k+1)/B] is bin k; 0 goes to bin 0."""
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner_edges, np.asarray(confidence, dtype=np.float64), side="left")


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_BINS) -> Calibration:
    """ECE and per-bin confidence/accuracy; ECE is NaN when there are no rows."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    idx = bin_index(conf, n_bins)
    bins, ece = [], 0.0
    for k in range(n_bins):
        sel = idx == k
        count = int(sel.sum())
        mean_conf = float(conf[sel].mean()) if count else float("nan")
        acc = float(ok[sel].mean()) if count else float("nan")
        if count:
            ece += count / len(conf) * abs(acc - mean_conf)
        bins.append(ReliabilityBin(k / n_bins, (k + 1) / n_bins, count, mean_conf, acc))
    return Calibration(ece=float(ece) if len(conf) else float("nan"), rows=len(conf), bins=tuple(bins))
