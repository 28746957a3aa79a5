"""Window drift tests against the reference profile, corrected for testing many columns at once.

Each window runs one test per feature: two-sample Kolmogorov-Smirnov for the numeric features
(confidence, margin, lengths, the 8 embedding projections) and a chi-square test of homogeneity
for the predicted label (prediction drift). Testing 13 columns per window over many windows would
raise alarms constantly at a plain alpha of 0.05 (1 - 0.95**13 = 49 % of null windows would have
at least one "drifted" column), so the p-values of one window are corrected with Benjamini-Hochberg
(false-discovery rate 0.05: the smallest p-value must clear 0.05/13 = 0.0038, the k-th smallest
0.05*k/13), and a window only counts as drifted when the
share of columns that survive the correction reaches the goal's drift_share. The monitor then asks
for drift_windows consecutive drifted windows before it acts (persistence), so a lone false
window does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
CORRECTION = "benjamini-hochberg (fdr 0.05) across the window's columns"
_MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class ColumnVerdict:
    """One column's test: statistic, raw and corrected p-value, and whether it drifted."""

    column: str
    test: str
    statistic: float
    p_value: float
    adjusted_p: float
    drifted: bool


@dataclass(frozen=True)
class WindowVerdict:
    """A window's columns and the decision: drifted when drift_share reaches the threshold."""

    columns: tuple[ColumnVerdict, ...]
    drift_share: float
    threshold: float
    drifted: bool
    rows: int
    correction: str = CORRECTION


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value."""
    result = stats.ks_2samp(reference, current, method="asymp")
    return float(result.statistic), float(result.pvalue)


def chi_square_test(reference: Sequence[str] | np.ndarray, current: Sequence[str] | np.ndarray) -> tuple[float, float]:
    """Chi-square homogeneity test of two label samples; rare labels pooled so expected counts >= 5."""
    ref_labels, ref_counts = np.unique(np.asarray(reference, dtype=str), return_counts=True)
    cur_labels, cur_counts = np.unique(np.asarray(current, dtype=str), return_counts=True)
    labels = sorted(set(ref_labels) | set(cur_labels))
    ref = np.array([dict(zip(ref_labels, ref_counts, strict=True)).get(k, 0) for k in labels], dtype=float)
    cur = np.array([dict(zip(cur_labels, cur_counts, strict=True)).get(k, 0) for k in labels], dtype=float)
    table = _pool_rare(np.vstack([ref, cur]))
    if table.shape[1] < 2:
        return 0.0, 1.0
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value)


def _pool_rare(table: np.ndarray) -> np.ndarray:
    """Merge categories whose expected count in either row is below 5 into one 'other' column."""
    totals, col = table.sum(axis=1, keepdims=True), table.sum(axis=0)
    expected = totals * col / max(table.sum(), 1.0)
    rare = (expected < _MIN_EXPECTED).any(axis=0)
    kept = table[:, ~rare]
    if rare.any():
        kept = np.hstack([kept, table[:, rare].sum(axis=1, keepdims=True)])
    return kept[:, kept.sum(axis=0) > 0]


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """BH-adjusted p-values (monotone step-up), same order as given; a NaN p-value counts as 1."""
    p = np.asarray(p_values, dtype=float)
    # A test that could not be computed (NaN, e.g. a column with missing values) is no evidence of
    # drift: it still counts among the window's tests, and scipy refuses NaN.
    return np.asarray(stats.false_discovery_control(np.where(np.isnan(p), 1.0, p), method="bh"), dtype=float)


def judge_window(
    reference: Mapping[str, np.ndarray],
    current: Mapping[str, np.ndarray],
    numeric: Sequence[str],
    categorical: Sequence[str],
    threshold: float,
    alpha: float = ALPHA,
) -> WindowVerdict:
    """Test every column of a window against the reference and decide whether the window drifted."""
    raw = [("ks", c, *ks_test(np.asarray(reference[c], float), np.asarray(current[c], float))) for c in numeric]
    raw += [("chi_square", c, *chi_square_test(reference[c], current[c])) for c in categorical]
    adjusted = benjamini_hochberg([r[3] for r in raw])
    columns = tuple(
        ColumnVerdict(col, test, stat, p, float(adj), bool(adj < alpha))
        for (test, col, stat, p), adj in zip(raw, adjusted, strict=True)
    )
    share = sum(c.drifted for c in columns) / max(len(columns), 1)
    rows = len(next(iter(current.values()))) if current else 0
    return WindowVerdict(columns, share, threshold, share >= threshold, rows)
