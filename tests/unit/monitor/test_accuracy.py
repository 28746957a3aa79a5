"""Live accuracy windows (services.monitor.domain.accuracy): the test's false alarms and power, calibration."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from services.kernel.goal import AccuracyDropSpec
from services.monitor.domain.accuracy import expected_calibration_error, judge_window

SPEC = AccuracyDropSpec()  # max_drop 0.05, 200 samples, alpha 0.01


def _window(rng: np.random.Generator, accuracy: float, n: int = SPEC.min_samples) -> tuple[list[float], list[bool]]:
    correct = (rng.random(n) < accuracy).tolist()
    return [0.9] * n, correct


def _rejection_probability(true_accuracy: float, evaluated: float, spec: AccuracyDropSpec) -> float:
    """Exactly: the chance that a window of a model at `true_accuracy` is judged breached."""
    n = spec.min_samples
    ks = [k for k in range(n + 1) if judge_window([0.5] * n, [True] * k + [False] * (n - k), evaluated, spec).breached]
    return float(binom.cdf(max(ks), n, true_accuracy)) if ks else 0.0


def test_a_model_at_its_evaluated_accuracy_raises_no_breach_over_60_windows() -> None:
    rng = np.random.default_rng(7)
    breached = [judge_window(*_window(rng, 0.9), evaluated=0.9, spec=SPEC).breached for _ in range(60)]
    assert not any(breached)
    assert 60 * _rejection_probability(0.9, 0.9, SPEC) < 1e-4, "false alarms over 60 windows stay negligible"


def test_a_15_point_drop_breaches_in_its_first_window_89_times_in_100_and_within_two_99() -> None:
    verdict = judge_window(*_window(np.random.default_rng(3), 0.75), evaluated=0.9, spec=SPEC)
    assert verdict.breached and verdict.p_value is not None and verdict.p_value < SPEC.alpha
    assert verdict.drop is not None and 0.1 < verdict.drop < 0.2
    power = _rejection_probability(0.75, 0.9, SPEC)
    assert power > 0.88 and 1 - (1 - power) ** 2 > 0.98


def test_a_drop_within_the_tolerance_is_not_a_breach() -> None:
    # 3 points below the evaluated 0.9, with max_drop 0.05: exactly at 87 %, never significant.
    verdict = judge_window([0.9] * 200, [True] * 174 + [False] * 26, evaluated=0.9, spec=SPEC)
    assert verdict.accuracy == 0.87 and not verdict.breached


def test_without_accuracy_drop_or_an_evaluated_accuracy_windows_are_measured_never_judged() -> None:
    conf, hit = [0.9] * 200, [False] * 200
    for evaluated, spec in ((0.9, None), (None, SPEC)):
        verdict = judge_window(conf, hit, evaluated, spec)
        assert verdict.accuracy == 0.0 and verdict.p_value is None and not verdict.breached


def test_calibration_error_is_the_gap_between_confidence_and_accuracy() -> None:
    assert expected_calibration_error([0.8] * 10, [True] * 8 + [False] * 2) < 1e-9
    assert abs(expected_calibration_error([0.95] * 10, [True] * 5 + [False] * 5) - 0.45) < 1e-9
    assert expected_calibration_error([], []) == 0.0
