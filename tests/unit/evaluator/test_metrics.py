import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from services.evaluator.domain.metrics import classification_metrics, slice_report


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 6, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 7, 300))
    labels = [f"l{i}" for i in range(8)]  # l7 never occurs: excluded from macro-F1
    m = classification_metrics(y_true, y_pred, labels)
    assert m.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert m.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    prec = precision_score(y_true, y_pred, labels=range(8), average=None, zero_division=0)
    rec = recall_score(y_true, y_pred, labels=range(8), average=None, zero_division=0)
    assert [s.precision for s in m.per_label] == pytest.approx(prec.tolist())
    assert [s.recall for s in m.per_label] == pytest.approx(rec.tolist())
    assert sum(map(sum, m.confusion)) == 300


def test_slice_gap_is_overall_minus_worst_slice():
    correct = np.array([1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)     # overall 0.75
    slices = ["a", "a", "a", "a", "b", "b", "b", "b"]           # a: 1.0, b: 0.5
    r = slice_report(correct, slices, "channel")
    assert r.worst == "b"
    assert r.gap == pytest.approx(0.25)
    assert {s.name: s.accuracy for s in r.slices} == {"a": 1.0, "b": 0.5}


def test_no_slice_field_is_a_documented_zero_gap():
    r = slice_report(np.array([True, False]), None, None)
    assert (r.gap, r.reason) == (0.0, "no slice field")


def test_slice_field_named_but_column_missing_is_nan():
    r = slice_report(np.array([True, False]), None, "channel")
    assert np.isnan(r.gap) and "missing" in r.reason
