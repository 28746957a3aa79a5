"""The port between the batcher and the model pool: what a batch returns, and the pool's contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from services.kernel.errors import NotFound


class AdapterNotLoaded(NotFound):
    """The adapter asked for is not in the pool (never loaded, failed to load, or being unloaded)."""


@dataclass(frozen=True)
class AdapterPredictions:
    """One batch's output for one adapter: probabilities (n, labels), embeddings (n, hidden), tokens (n,)."""

    labels: tuple[str, ...]
    probs: np.ndarray
    embeddings: np.ndarray
    token_counts: np.ndarray


@dataclass(frozen=True)
class Scored:
    """One text's share of a batch."""

    labels: tuple[str, ...]
    probs: np.ndarray
    embedding: np.ndarray
    token_count: int
    batch_size: int


class BatchModel(Protocol):
    """What the batcher needs from the pool; leases keep an adapter in memory while requests wait."""

    def acquire(self, digest: str) -> None:
        """Take a lease on a loaded adapter; AdapterNotLoaded when it is not (or no longer) loaded."""

    def release(self, digest: str) -> None:
        """Give a lease back; an adapter being unloaded goes when its last lease does."""

    def predict(self, digest: str, texts: list[str]) -> AdapterPredictions:
        """Run one batch of texts through one adapter."""


def split(batch: AdapterPredictions) -> list[Scored]:
    """One Scored per text of a batch."""
    n = len(batch.probs)
    return [Scored(batch.labels, batch.probs[i], batch.embeddings[i], int(batch.token_counts[i]), n)
            for i in range(n)]
