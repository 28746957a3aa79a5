"""The window tests and their multiple-testing correction, on synthetic data."""

from __future__ import annotations

import numpy as np

from services.monitor.domain.drift import benjamini_hochberg, chi_square_test, judge_window

NUMERIC = tuple(f"x{i}" for i in range(12))


def _sample(rng, n, shift=0.0, labels=("a", "b", "c", "d")):
    data = {c: rng.normal(shift, 1.0, n) for c in NUMERIC}
    data["label"] = rng.choice(labels, n)
    return data


def test_benjamini_hochberg_matches_the_step_up_rule():
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01 0.03 0.04 0.5 -> p*n/rank 0.04 0.06 0.0533 0.5 -> running min from the top
    np.testing.assert_allclose(adjusted, [0.04, 0.16 / 3, 0.16 / 3, 0.5], atol=1e-9)


def test_a_column_that_could_not_be_tested_is_no_evidence_and_still_counts():
    # NaN -> 1, so three tests: 0.01*3/1 = 0.03, 0.02*3/2 = 0.03, 1
    np.testing.assert_allclose(benjamini_hochberg([float("nan"), 0.01, 0.02]), [1.0, 0.03, 0.03], atol=1e-12)
    rng = np.random.default_rng(3)
    current = _sample(rng, 500, shift=0.5)
    current["x0"][:10] = np.nan  # KS on a column with missing values gives a NaN p-value
    v = judge_window(_sample(rng, 1000), current, NUMERIC, ("label",), 0.5)
    x0 = next(c for c in v.columns if c.column == "x0")
    assert not x0.drifted and x0.adjusted_p == 1.0
    assert v.drifted and v.drift_share >= 11 / 13


def test_same_distribution_windows_rarely_drift():
    rng = np.random.default_rng(0)
    ref = _sample(rng, 1000)
    verdicts = [judge_window(ref, _sample(rng, 500), NUMERIC, ("label",), 0.5) for _ in range(60)]
    assert sum(v.drifted for v in verdicts) == 0
    # Without the correction a plain 0.05 would flag at least one column in about half the windows.
    assert sum(any(c.p_value < 0.05 for c in v.columns) for v in verdicts) > 12
    assert sum(any(c.drifted for c in v.columns) for v in verdicts) <= 6


def test_shifted_windows_drift():
    rng = np.random.default_rng(1)
    v = judge_window(_sample(rng, 1000), _sample(rng, 500, shift=0.5), NUMERIC, ("label",), 0.5)
    assert v.drifted and v.drift_share >= 12 / 13


def test_label_shift_is_prediction_drift():
    rng = np.random.default_rng(2)
    ref = rng.choice(["a", "b", "c"], 1000)
    _, p_same = chi_square_test(ref, rng.choice(["a", "b", "c"], 500))
    _, p_shift = chi_square_test(ref, rng.choice(["a", "b", "c"], 500, p=[0.6, 0.2, 0.2]))
    assert p_same > 0.01 and p_shift < 1e-6
