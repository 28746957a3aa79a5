import numpy as np
import pytest

from services.evaluator.domain.calibration import bin_index, reliability


def test_ece_matches_a_hand_computed_example():
    # 5 bins of width 0.2. Rows by bin: (0,.2]: .15 right; (.2,.4]: .35 wrong; (.6,.8]: .75 and .65
    # both right; (.8,1]: .95 right, .85 wrong. ECE = (1*.85 + 1*.35 + 2*|1-.70| + 2*|.5-.90|) / 6 = 2.6/6.
    conf = np.array([0.95, 0.85, 0.75, 0.65, 0.35, 0.15])
    correct = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    cal = reliability(conf, correct, n_bins=5)
    assert cal.ece == pytest.approx(2.6 / 6)
    counts = [b.count for b in cal.bins]
    assert counts == [1, 1, 0, 2, 2]
    assert cal.bins[3].confidence == pytest.approx(0.70)
    assert cal.bins[3].accuracy == pytest.approx(1.0)
    assert cal.bins[4].confidence == pytest.approx(0.90)
    assert cal.bins[4].accuracy == pytest.approx(0.5)
    assert np.isnan(cal.bins[2].accuracy)  # the empty bin is reported, not invented


def test_bins_are_right_closed_and_zero_goes_to_the_first():
    assert bin_index(np.array([0.0, 0.2, 0.2000001, 1.0]), 5).tolist() == [0, 0, 1, 4]


def test_perfectly_calibrated_predictions_have_zero_ece():
    conf = np.array([0.5, 0.5, 1.0, 1.0])
    cal = reliability(conf, np.array([1, 0, 1, 1], dtype=bool), n_bins=10)
    assert cal.ece == pytest.approx(0.0)


def test_no_rows_gives_nan_not_zero():
    assert np.isnan(reliability(np.array([]), np.array([], dtype=bool)).ece)
