"""The data order and learning-rate schedule: complete, deterministic, little padding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.kernel.settings import REPO_ROOT
from services.trainer.domain import schedule


def test_every_row_once_per_epoch_and_the_same_order_for_the_same_seed() -> None:
    lengths = [int(x) for x in np.random.default_rng(0).integers(3, 40, 1000)]
    batches = schedule.epoch_batches(lengths, 32, seed=5, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert batches == schedule.epoch_batches(lengths, 32, seed=5, epoch=0)
    assert batches != schedule.epoch_batches(lengths, 32, seed=5, epoch=1)
    assert batches != schedule.epoch_batches(lengths, 32, seed=6, epoch=0)


def test_batch_at_walks_the_epochs() -> None:
    lengths = list(range(10))
    steps = [schedule.batch_at(lengths, 4, 1, s) for s in range(6)]
    assert steps[:3] == schedule.epoch_batches(lengths, 4, 1, 0)
    assert steps[3:] == schedule.epoch_batches(lengths, 4, 1, 1)
    assert schedule.total_steps(10, 4, 1.5) == 5


def test_shards_split_a_batch_without_overlap() -> None:
    batch = list(range(9))
    shards = [schedule.shard(batch, r, 2) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == batch and not set(shards[0]) & set(shards[1])


def test_length_bucketing_keeps_padding_small_on_banking77() -> None:
    """T2b's premise: real/padded tokens >= 0.75 with bucketing (word counts stand in for tokens)."""
    texts = pd.read_csv(REPO_ROOT / "datasets" / "banking77" / "train.csv").text.head(3000)
    lengths = [len(t.split()) + 2 for t in texts]
    batches = schedule.epoch_batches(lengths, 32, seed=17, epoch=0)
    real = sum(lengths)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert real / padded >= 0.75
    random_batches = [list(range(i, min(i + 32, len(lengths)))) for i in range(0, len(lengths), 32)]
    assert padded < sum(max(lengths[i] for i in b) * len(b) for b in random_batches)


@pytest.mark.parametrize(("step", "expected"), [(0, 0.1), (9, 1.0), (10, 1.0), (55, 0.5), (99, 1 / 90)])
def test_learning_rate_warms_up_then_decays_linearly(step: int, expected: float) -> None:
    assert schedule.learning_rate(step, 100, 1.0, 0.1) == pytest.approx(expected)
