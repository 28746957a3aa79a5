"""The run's differential-privacy guarantee, read from run.finished, for the gate and the report.

The trainer puts its DP-SGD accounting in `RunFinished.metrics` (services.trainer.domain.privacy):
`privacy_epsilon`, `privacy_delta`, `privacy_noise_multiplier`, `privacy_sample_rate`,
`privacy_steps`, `privacy_max_grad_norm` and `privacy_accountant_<name>` = 1. A run without them was
not trained with DP: its `privacy_epsilon` criterion is unmeasured, so the gate fails closed on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from services.evaluator.domain.gate import Measurement

ACCOUNTANT_PREFIX = "privacy_accountant_"
NOT_PRIVATE = "the run was not trained with differential privacy (run.finished carries no privacy_epsilon)"


@dataclass(frozen=True)
class PrivacyGuarantee:
    """(epsilon, delta)-DP of the adapter with respect to one train row, and how it was accounted."""

    epsilon: float
    delta: float
    accountant: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float

    @property
    def statement(self) -> str:
        """One line for the report."""
        return (f"(ε = {self.epsilon:.3g}, δ = {self.delta:.3g})-DP per train row: DP-SGD with noise multiplier "
                f"{self.noise_multiplier:.4g}, clipping norm {self.max_grad_norm:g}, Poisson sampling rate "
                f"{self.sample_rate:.4g}, {self.steps} steps, {self.accountant.upper()} accountant")


def guarantee_of(metrics: Mapping[str, float]) -> PrivacyGuarantee | None:
    """The guarantee a run.finished reports, or None when the run was not trained with DP."""
    if "privacy_epsilon" not in metrics:
        return None
    accountants = sorted(k.removeprefix(ACCOUNTANT_PREFIX) for k, v in metrics.items()
                         if k.startswith(ACCOUNTANT_PREFIX) and v)
    return PrivacyGuarantee(
        epsilon=float(metrics["privacy_epsilon"]), delta=float(metrics.get("privacy_delta", math.nan)),
        accountant=",".join(accountants) or "unknown", noise_multiplier=float(metrics.get("privacy_noise_multiplier", math.nan)),
        sample_rate=float(metrics.get("privacy_sample_rate", math.nan)), steps=int(metrics.get("privacy_steps", 0)),
        max_grad_norm=float(metrics.get("privacy_max_grad_norm", math.nan)))


def measurement(guarantee: PrivacyGuarantee | None) -> Measurement:
    """The `privacy_epsilon` criterion's value: the run's epsilon (at its delta), or unmeasured."""
    if guarantee is None:
        return Measurement(None, NOT_PRIVATE)
    if not math.isfinite(guarantee.delta) or not 0 < guarantee.delta < 1:
        return Measurement(None, f"the run reports epsilon without a valid delta ({guarantee.delta})")
    return Measurement(guarantee.epsilon, f"δ = {guarantee.delta:.3g}, {guarantee.accountant} accountant")
