"""The deterministic train/eval split: seeded, stratified by label."""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(values: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of each key xor the seed: a seeded, uniform ranking independent of row order."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) ^ (np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def eval_counts(label_sizes: np.ndarray, fraction: float) -> np.ndarray:
    """Eval rows per label: round(n * fraction), at least one for labels with two or more rows."""
    n = np.round(label_sizes * fraction).astype(np.int64)
    return np.where(label_sizes >= 2, np.maximum(n, 1), 0)


def assign_eval(
    row_keys: np.ndarray, label_codes: np.ndarray, fraction: float, seed: int, sticky: np.ndarray | None = None
) -> np.ndarray:
    """Mask of the rows that go to eval: per label, the rows ranked first by a seeded hash of their key.

    `sticky` rows (those already in an earlier version's eval split) rank before all others, so a
    republished dataset keeps its eval rows in eval instead of leaking them into train.
    """
    sticky = np.zeros(len(row_keys), dtype=bool) if sticky is None else sticky
    rank = _mix(row_keys, seed)
    order = np.lexsort((row_keys, rank, ~sticky, label_codes))
    n_labels = int(label_codes.max(initial=-1)) + 1
    sizes = np.bincount(label_codes, minlength=n_labels)
    wanted = np.maximum(eval_counts(sizes, fraction), np.bincount(label_codes[sticky], minlength=n_labels))
    starts = np.cumsum(sizes) - sizes
    sorted_labels = label_codes[order]
    position = np.arange(len(order)) - starts[sorted_labels]
    mask = np.zeros(len(row_keys), dtype=bool)
    mask[order] = position < wanted[sorted_labels]
    return mask
