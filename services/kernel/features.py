"""The per-prediction features the deployer logs and the monitor compares with the reference profile.

The evaluator computes the same features on the eval split (the reference profile), so the
definition lives here, once. The embedding is reduced with a fixed Gaussian random projection:
8 dimensions keep the drift test cheap, and the seed makes deployer and evaluator agree without
exchanging a matrix (Johnson-Lindenstrauss: distances survive the projection approximately).
"""

from __future__ import annotations

import numpy as np

PROJECTION_DIMS = 8
PROJECTION_SEED = 20240917
NUMERIC_FEATURES = ("confidence", "margin", "text_length", "token_count")
EMBEDDING_FEATURES = tuple(f"emb_{i}" for i in range(PROJECTION_DIMS))
CATEGORICAL_FEATURES = ("label",)
FEATURE_NAMES = NUMERIC_FEATURES + EMBEDDING_FEATURES + CATEGORICAL_FEATURES


def projection_matrix(hidden_size: int, dims: int = PROJECTION_DIMS, seed: int = PROJECTION_SEED) -> np.ndarray:
    """A (hidden_size, dims) Gaussian projection scaled by 1/sqrt(dims)."""
    rng = np.random.default_rng(seed)
    matrix: np.ndarray = (rng.standard_normal((hidden_size, dims)) / np.sqrt(dims)).astype(np.float32)
    return matrix


def project(embeddings: np.ndarray, seed: int = PROJECTION_SEED) -> np.ndarray:
    """Project L2-normalised sentence embeddings (n, hidden) to (n, PROJECTION_DIMS)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = emb / np.maximum(norms, 1e-12)
    projected: np.ndarray = emb @ projection_matrix(emb.shape[1], PROJECTION_DIMS, seed)
    return projected


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability per row."""
    p = np.sort(np.asarray(probabilities), axis=1)
    return p[:, -1] - (p[:, -2] if p.shape[1] > 1 else 0.0)
