"""Live accuracy from ground truth: one window's accuracy and calibration, and whether it breached.

A window holds `min_samples` predictions whose true label came back (feedback.recorded). It breaches
when its accuracy is significantly below the adapter's evaluated accuracy minus the tolerated drop: a
one-sided exact binomial test of H0 "live accuracy >= evaluated - max_drop" at `alpha`. Testing against
the tolerance rather than the evaluated accuracy itself keeps false alarms negligible over many windows
of a model that performs as evaluated (at 0.9 evaluated and the defaults, max_drop 0.05, 200 samples and
alpha 0.01: about 1e-6 per window), while a 15-point drop is found in its first window 89 times in 100
and within two windows 99 times in 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from services.kernel.goal import AccuracyDropSpec

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class AccuracyVerdict:
    """One closed window: what it measured and what the test said (p_value None: nothing to test against)."""

    samples: int
    correct: int
    accuracy: float
    ece: float
    evaluated: float | None
    p_value: float | None
    breached: bool

    @property
    def drop(self) -> float | None:
        """Evaluated minus live accuracy (positive: worse live)."""
        return None if self.evaluated is None else self.evaluated - self.accuracy


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = CALIBRATION_BINS) -> float:
    """ECE: the sample-weighted gap between confidence and accuracy over equal-width confidence bins."""
    if not confidences:
        return 0.0
    conf, hit = np.asarray(confidences, dtype=float), np.asarray(correct, dtype=float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            gap += float(mask.mean()) * abs(float(conf[mask].mean()) - float(hit[mask].mean()))
    return gap


def judge_window(confidences: Sequence[float], correct: Sequence[bool], evaluated: float | None,
                 spec: AccuracyDropSpec | None) -> AccuracyVerdict:
    """Accuracy and calibration of one window; breached only when the goal names accuracy_drop and the
    adapter has an evaluated accuracy to compare with."""
    n, k = len(correct), int(sum(correct))
    accuracy = k / n if n else 0.0
    ece = expected_calibration_error(confidences, correct)
    if spec is None or evaluated is None or n == 0:
        return AccuracyVerdict(n, k, accuracy, ece, evaluated, None, False)
    floor = max(evaluated - spec.max_drop, 1e-9)
    p_value = float(binomtest(k, n, floor, alternative="less").pvalue)
    return AccuracyVerdict(n, k, accuracy, ece, evaluated, p_value, p_value < spec.alpha)
