"""The tiny training run the Ray tests share: 200 banking77 rows on the real model (2 shared cores)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from services.kernel.goal import ApproachSpec
from services.kernel.settings import REPO_ROOT
from services.trainer.adapters.training_loop import LoopConfig

BASE = "bundled:all-MiniLM-L6-v2"


def tiny_rows(n: int = 200, offset: int = 0) -> pd.DataFrame:
    """n banking77 training rows (the reproducibility and kill tests stay tiny: 2 shared cores)."""
    return pd.read_csv(REPO_ROOT / "datasets" / "banking77" / "train.csv").iloc[offset:offset + n].reset_index(drop=True)


def tiny_config(**changes: Any) -> LoopConfig:
    """200 rows, max_length 32, 1 epoch (13 steps on 2 workers), a checkpoint every 3 steps, the real model."""
    df = tiny_rows()
    labels = sorted(df.label.unique())
    index = {label: i for i, label in enumerate(labels)}
    values: dict[str, Any] = dict(
        base_model=BASE, labels=labels, texts=df.text.tolist(), targets=[index[x] for x in df.label],
        eval_texts=df.text.tolist()[:40], eval_targets=[index[x] for x in df.label][:40],
        approach=ApproachSpec(), epochs=1.0, learning_rate=2e-3, batch_size=16, max_length=32, seed=17,
        warmup_fraction=0.06, weight_decay=0.01, max_grad_norm=1.0, checkpoint_every=3,
        explode_grad_norm=1e4, threads=1, log_every=1)
    values.update(changes)
    return LoopConfig(**values)
