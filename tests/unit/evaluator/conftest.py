"""Fakes for the evaluator's unit tests: a goal factory and a scorer with scripted predictions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from services.kernel.goal import Goal, load_goal
from services.kernel.settings import REPO_ROOT


@dataclass
class FakeScored:
    probs: np.ndarray
    embeddings: np.ndarray
    token_counts: np.ndarray


class FakeScorer:
    """Predicts by a rule on the text; confidence `conf` on the chosen label, the rest spread evenly."""

    def __init__(self, labels: list[str], rule: Callable[[str], str], conf: float = 0.9, fail: bool = False) -> None:
        self.labels, self.rule, self.conf, self.fail = labels, rule, conf, fail
        self.calls: list[int] = []

    def predict(self, texts: list[str], batch_size: int = 64) -> FakeScored:
        if self.fail:
            raise RuntimeError("model exploded")
        self.calls.append(len(texts))
        n, k = len(texts), len(self.labels)
        probs = np.full((n, k), (1 - self.conf) / (k - 1), dtype=np.float32)
        for i, t in enumerate(texts):
            probs[i, self.labels.index(self.rule(t))] = self.conf
        emb = np.asarray([[len(t), t.count(" "), 1.0, 0.5] for t in texts], dtype=np.float32)
        return FakeScored(probs, emb, np.asarray([len(t.split()) + 2 for t in texts]))


@pytest.fixture
def base_goal() -> Goal:
    return load_goal(REPO_ROOT / "goals" / "banking77.yaml")


def _goal_with(goal: Goal, **changes: dict[str, object]) -> Goal:
    data = goal.model_dump(mode="json")
    for section, values in changes.items():
        data[section].update(values)
    return Goal.model_validate(data)


@pytest.fixture
def goal_with() -> Callable[..., Goal]:
    """goal_with(goal, acceptance={...}, task={...}): the goal with some sections' keys replaced."""
    return _goal_with


@pytest.fixture
def fake_scorer() -> type[FakeScorer]:
    """The FakeScorer class (test modules cannot import conftest under importlib mode)."""
    return FakeScorer
