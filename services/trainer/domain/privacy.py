"""DP-SGD's plan and accounting: how much noise, how many steps, what epsilon a run has spent.

The plan is decided once, on the driver, from the goal's `training.privacy` and the train split's
size, and travels to every worker (and into the envelope):

- **Poisson sampling.** Each step, every train row joins the global batch independently with
  probability q = batch_size / rows (`poisson_batch`: a pure function of (seed, step), so every
  worker draws the same global batch and a resumed run draws the same ones again).
- **Noise.** With no `noise_multiplier` in the goal, the noise is calibrated with Opacus'
  `get_noise_multiplier` so that the planned steps (epochs x rows / batch) spend at most epsilon;
  with one, the run is cut at the last step whose epsilon is within the budget (`steps_within`).
  Either way the run stops at the budget, never past it.
- **Accounting.** Opacus' RDP (default) or PRV accountant over (noise, q, steps): `epsilon` is what
  the accountant's `get_epsilon(delta)` says for the steps actually taken.

Privacy of the seed: the noise is drawn from a generator seeded by (training seed, step), so
`tuneline runs reproduce` repeats a DP run bit for bit. The guarantee therefore holds against anyone
who does not know the envelope's seeds: treat an envelope of a DP run as confidential as its data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from services.kernel.errors import InvalidInput
from services.kernel.goal import PrivacySpec

# Kept apart from schedule's (seed, epoch) streams: the sampling stream of step k is its own.
_SAMPLING_STREAM = 0x5A4D


@dataclass(frozen=True)
class PrivacyPlan:
    """The DP-SGD settings of one run (what the envelope records under `privacy`)."""

    epsilon_budget: float
    delta: float
    max_grad_norm: float
    noise_multiplier: float
    sample_rate: float
    expected_batch_size: float   # global: sample_rate x rows
    steps: int                   # steps to run: the planned ones, or fewer when the budget ends first
    planned_steps: int           # epochs x rows / batch_size
    accountant: str              # rdp | prv
    calibrated: bool             # the noise was calibrated to the budget (no noise_multiplier in the goal)

    @property
    def stops_at_budget(self) -> bool:
        """Whether the budget, not the epochs, ends the run."""
        return self.steps < self.planned_steps

    def as_dict(self) -> dict[str, object]:
        """The plan as JSON-ready values."""
        return asdict(self)


def epsilon(accountant: str, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Opacus' epsilon for `steps` DP-SGD steps at (noise, q), at delta (0 steps: 0)."""
    if steps <= 0:
        return 0.0
    acc = make_accountant(accountant)
    acc.history = [(noise_multiplier, sample_rate, steps)]
    return float(acc.get_epsilon(delta=delta))


def make_accountant(name: str) -> Accountant:
    """A fresh Opacus accountant (`rdp` or `prv`)."""
    from opacus.accountants import create_accountant  # type: ignore[import-untyped]  # opacus ships no type information

    acc: Accountant = create_accountant(mechanism=name)
    return acc


class Accountant(Protocol):
    """The part of an Opacus accountant used here (a structural stand-in for its untyped class)."""

    history: list[tuple[float, float, int]]

    def step(self, *, noise_multiplier: float, sample_rate: float) -> None: ...

    def get_epsilon(self, delta: float) -> float: ...


def steps_within(accountant: str, noise_multiplier: float, sample_rate: float, delta: float, budget: float,
                 most: int) -> int:
    """The largest number of steps (at most `most`) whose epsilon stays within the budget."""
    if epsilon(accountant, noise_multiplier, sample_rate, most, delta) <= budget:
        return most
    low, high = 0, most          # epsilon(low) <= budget < epsilon(high); epsilon grows with steps
    while high - low > 1:
        mid = (low + high) // 2
        if epsilon(accountant, noise_multiplier, sample_rate, mid, delta) <= budget:
            low = mid
        else:
            high = mid
    return low


def plan(spec: PrivacySpec, rows: int, batch_size: int, planned_steps: int) -> PrivacyPlan:
    """The run's DP-SGD plan, or a ConfigError naming the key when the goal cannot be met."""
    if rows < 2:
        raise InvalidInput(f"training.privacy: the train split has {rows} row(s); DP-SGD needs a dataset")
    if spec.delta >= 1.0 / rows:
        raise InvalidInput(f"training.privacy.delta: {spec.delta:g} is not below 1/n = 1/{rows} (the train rows): "
                          "such a delta allows publishing a row outright",
                          hint=f"choose delta < {1.0 / rows:.2g}, e.g. 1e-5")
    if batch_size >= rows:
        raise InvalidInput(f"training.batch_size: {batch_size} is not below the {rows} train rows: DP-SGD's Poisson "
                          "sampling needs a sampling rate below 1", hint="lower training.batch_size")
    q = batch_size / rows
    if spec.noise_multiplier is None:
        from opacus.accountants.utils import get_noise_multiplier  # type: ignore[import-untyped]  # opacus ships no type information

        try:
            sigma = float(get_noise_multiplier(target_epsilon=spec.epsilon, target_delta=spec.delta, sample_rate=q,
                                               steps=planned_steps, accountant=spec.accountant))
        except ValueError as err:
            raise InvalidInput(f"training.privacy.epsilon: {spec.epsilon:g} cannot be met in {planned_steps} steps: {err}",
                              hint="raise epsilon, or train fewer epochs or smaller batches") from None
        steps = planned_steps
    else:
        sigma = spec.noise_multiplier
        steps = steps_within(spec.accountant, sigma, q, spec.delta, spec.epsilon, planned_steps)
        if steps == 0:
            raise InvalidInput(f"training.privacy: one step at noise multiplier {sigma:g} already spends more than "
                              f"epsilon {spec.epsilon:g}", hint="raise noise_multiplier or epsilon")
    return PrivacyPlan(spec.epsilon, spec.delta, spec.max_grad_norm, sigma, q, q * rows, steps, planned_steps,
                       spec.accountant, spec.noise_multiplier is None)


def poisson_batch(rows: int, sample_rate: float, seed: int, step: int) -> list[int]:
    """The global batch of a step: each row in independently with probability `sample_rate`."""
    rng = np.random.default_rng([seed, _SAMPLING_STREAM, step])
    return np.flatnonzero(rng.random(rows) < sample_rate).tolist()


def noise_seed(seed: int, step: int) -> int:
    """The seed of the noise generator at a step (a function of (seed, step) only: resumable)."""
    return (seed * 1_000_003 + step * 7_919 + 0x5EED) % (2**63)


def run_metrics(p: PrivacyPlan, steps_taken: int, spent: float) -> dict[str, float]:
    """What run.finished's `metrics` carries about the guarantee (the accountant as a key)."""
    return {"privacy_epsilon": spent, "privacy_delta": p.delta, "privacy_noise_multiplier": p.noise_multiplier,
            "privacy_sample_rate": p.sample_rate, "privacy_steps": float(steps_taken),
            "privacy_max_grad_norm": p.max_grad_norm, "privacy_epsilon_budget": p.epsilon_budget,
            "privacy_stopped_at_budget": float(p.stops_at_budget and steps_taken >= p.steps),
            f"privacy_accountant_{p.accountant}": 1.0}
