"""The order of training data and the learning rate at each step: pure functions of (seed, step).

Everything here depends only on its arguments, so a run resumed at step k replays exactly the
batches and learning rates an uninterrupted run would have used from step k on.
"""

from __future__ import annotations

import math

import numpy as np

# Length bucketing sorts this many batches' worth of shuffled rows by length, then cuts batches:
# batches hold similar lengths (little padding) while the data stays shuffled at the scale of a chunk.
BUCKET_BATCHES = 50


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Optimiser steps in one pass over the data (the last batch may be short)."""
    return math.ceil(n_rows / batch_size)


def total_steps(n_rows: int, batch_size: int, epochs: float) -> int:
    """Optimiser steps for `epochs` passes (fractional epochs allowed), at least one."""
    return max(1, math.ceil(steps_per_epoch(n_rows, batch_size) * epochs))


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch: shuffled, bucketed by length, batch order shuffled again."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    chunk = batch_size * BUCKET_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk].tolist(), key=lambda i: (lengths[i], i))
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_at(lengths: list[int], batch_size: int, seed: int, step: int) -> list[int]:
    """The global batch (row indices) of a step."""
    per_epoch = steps_per_epoch(len(lengths), batch_size)
    epoch, index = divmod(step, per_epoch)
    return epoch_batches(lengths, batch_size, seed, epoch)[index]


def shard(batch: list[int], rank: int, world_size: int) -> list[int]:
    """This worker's rows of a global batch (strided, so lengths stay balanced across workers)."""
    return batch[rank::world_size]


def learning_rate(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    """Linear warm-up to `peak` over the first steps, then linear decay to zero at `total`."""
    warmup = max(1, round(total * warmup_fraction)) if warmup_fraction > 0 else 0
    if step < warmup:
        return peak * (step + 1) / warmup
    remaining = max(1, total - warmup)
    return peak * max(0.0, (total - step) / remaining)
