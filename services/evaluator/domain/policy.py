"""What the goal's policy would have done on the eval split: escalations and blocked labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PolicyOutcome:
    threshold: float
    escalation_rate: float        # share of rows answered "escalate": confidence below the threshold
    answered_accuracy: float      # accuracy of the rows not escalated (NaN when all escalate)
    answered_rows: int
    blocked_labels: tuple[str, ...]
    blocked_predictions: int      # rows predicted as a blocked label (never acted on automatically)
    blocked_answered: int         # of those, how many were above the threshold


def policy_outcome(
    confidence: np.ndarray, correct: np.ndarray, predicted: Sequence[str], threshold: float, blocked: Sequence[str]
) -> PolicyOutcome:
    """Escalation rate at the threshold, accuracy of what was answered, blocked-label predictions."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    escalate = conf < threshold
    answered = ~escalate
    is_blocked = np.isin(np.asarray(predicted, dtype=object), list(blocked)) if blocked else np.zeros(len(conf), bool)
    return PolicyOutcome(
        threshold=threshold,
        escalation_rate=float(escalate.mean()) if len(conf) else float("nan"),
        answered_accuracy=float(ok[answered].mean()) if answered.any() else float("nan"),
        answered_rows=int(answered.sum()),
        blocked_labels=tuple(blocked),
        blocked_predictions=int(is_blocked.sum()),
        blocked_answered=int((is_blocked & answered).sum()),
    )
