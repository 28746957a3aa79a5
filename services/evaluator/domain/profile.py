"""The reference profile: the per-prediction features the deployer logs, computed on the eval split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.kernel import features


@dataclass(frozen=True)
class ReferenceTable:
    """Columns named by features.FEATURE_NAMES, one row per eval text."""

    numeric: dict[str, np.ndarray]    # confidence, margin, text_length, token_count, emb_0..emb_7
    label: tuple[str, ...]            # the predicted label

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.label)


def reference_table(
    probs: np.ndarray, embeddings: np.ndarray, token_counts: np.ndarray, texts: Sequence[str], labels: Sequence[str]
) -> ReferenceTable:
    """The features of every prediction, exactly as features.py defines them for live traffic."""
    probs = np.asarray(probs, dtype=np.float64)
    proj = features.project(embeddings)
    numeric = {
        "confidence": probs.max(axis=1),
        "margin": features.margins(probs),
        "text_length": np.asarray([len(t) for t in texts], dtype=np.int64),  # characters, as the deployer counts
        "token_count": np.asarray(token_counts, dtype=np.int64),
    }
    numeric |= {name: proj[:, i].astype(np.float64) for i, name in enumerate(features.EMBEDDING_FEATURES)}
    predicted = tuple(labels[i] for i in probs.argmax(axis=1))
    return ReferenceTable(numeric, predicted)
