"""Classification metrics: accuracy, macro-F1, per-label precision/recall, confusion, slices.

Labels are integer indices into a label list. Macro-F1 averages over the labels that occur in the
truth or in the predictions (as scikit-learn does): a label nobody predicted and no row carries
says nothing about the model. A label with no predictions has precision 0 (no credit for silence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(frozen=True)
class ClassificationMetrics:
    rows: int
    accuracy: float
    macro_f1: float
    labels: tuple[str, ...]
    per_label: tuple[LabelScore, ...]
    confusion: tuple[tuple[int, ...], ...]   # rows: truth, columns: prediction


@dataclass(frozen=True)
class SliceAccuracy:
    name: str
    rows: int
    accuracy: float


@dataclass(frozen=True)
class SliceReport:
    field: str
    slices: tuple[SliceAccuracy, ...]
    worst: str
    gap: float        # overall accuracy minus the worst slice's accuracy (0 when none is worse)
    reason: str = ""


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """An (n_labels, n_labels) count matrix, truth by row, prediction by column."""
    m = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    ratio: np.ndarray = np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)
    return ratio


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> ClassificationMetrics:
    """Accuracy, macro-F1 and per-label scores; NaN accuracy and F1 when there are no rows."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    m = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(m).astype(np.float64)
    support, predicted = m.sum(axis=1), m.sum(axis=0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = (support > 0) | (predicted > 0)
    n = len(y_true)
    scores = tuple(
        LabelScore(lab, float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]), int(predicted[i]))
        for i, lab in enumerate(labels)
    )
    return ClassificationMetrics(
        rows=n,
        accuracy=float(tp.sum() / n) if n else float("nan"),
        macro_f1=float(f1[present].mean()) if present.any() else float("nan"),
        labels=tuple(labels),
        per_label=scores,
        confusion=tuple(tuple(int(v) for v in row) for row in m),
    )


def slice_report(correct: np.ndarray, slices: Sequence[str] | None, field: str | None) -> SliceReport:
    """Accuracy per slice and the worst slice's gap to the overall accuracy.

    With no slice field the gap is 0.0 with reason "no slice field": there is no subgroup to be
    worse than the whole, so the criterion is vacuously met (a documented choice, not a default).
    """
    if not field:
        return SliceReport(field="", slices=(), worst="", gap=0.0, reason="no slice field")
    correct = np.asarray(correct, dtype=bool)
    if slices is None or len(slices) != len(correct) or not len(correct):
        return SliceReport(field=field, slices=(), worst="", gap=float("nan"), reason=f"slice column {field!r} missing")
    names = np.asarray([str(s) for s in slices])
    found = tuple(
        SliceAccuracy(str(name), int((names == name).sum()), float(correct[names == name].mean()))
        for name in sorted(set(names.tolist()))
    )
    worst = min(found, key=lambda s: s.accuracy)
    gap = max(0.0, float(correct.mean()) - worst.accuracy)
    return SliceReport(field=field, slices=found, worst=worst.name, gap=gap)
