"""Candidate vs champion on the same rows: McNemar's exact test with the mid-p correction.

Only discordant rows carry information: b = candidate right and champion wrong, c = the reverse.
Under "equally good" b ~ Binomial(b + c, 1/2). The two-sided mid-p value is
2 * (P(X < min(b, c)) + P(X = min(b, c)) / 2), capped at 1 (Fagerland et al., 2013: closer to the
nominal level than the exact test, which is conservative). The statistic reported is the
uncorrected chi-square (b - c)^2 / (b + c), 0 when there are no discordant rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

TEST_NAME = "mcnemar_midp"


@dataclass(frozen=True)
class ChampionComparison:
    champion_digest: str
    test: str
    statistic: float
    p_value: float
    delta: float                 # candidate accuracy minus champion accuracy
    candidate_accuracy: float
    champion_accuracy: float
    rows: int
    candidate_only: int          # b: candidate right, champion wrong
    champion_only: int           # c: champion right, candidate wrong
    passed: bool
    reason: str


def mcnemar_midp(b: int, c: int) -> tuple[float, float]:
    """(chi-square statistic, two-sided mid-p value) for b and c discordant rows."""
    n = b + c
    if n == 0:
        return 0.0, 1.0
    k = min(b, c)
    p = 2.0 * (binom.cdf(k - 1, n, 0.5) + 0.5 * binom.pmf(k, n, 0.5))
    return float((b - c) ** 2 / n), float(min(1.0, p))


def compare(
    candidate_correct: np.ndarray,
    champion_correct: np.ndarray,
    champion_digest: str,
    min_delta: float,
    significance: float,
) -> ChampionComparison:
    """Passes when the candidate is not significantly worse and its accuracy delta meets min_delta."""
    cand = np.asarray(candidate_correct, dtype=bool)
    champ = np.asarray(champion_correct, dtype=bool)
    b, c = int((cand & ~champ).sum()), int((~cand & champ).sum())
    stat, p = mcnemar_midp(b, c)
    delta = float(cand.mean() - champ.mean())
    worse = delta < 0 and p < significance
    passed = not worse and delta >= min_delta
    if worse:
        reason = f"significantly worse than the champion (delta {delta:+.4f}, p={p:.4g} < {significance})"
    elif delta < min_delta:
        reason = f"delta {delta:+.4f} below min_delta {min_delta:+.4f} (p={p:.4g})"
    else:
        reason = f"delta {delta:+.4f} >= min_delta {min_delta:+.4f}, not significantly worse (p={p:.4g})"
    return ChampionComparison(
        champion_digest, TEST_NAME, stat, p, delta, float(cand.mean()), float(champ.mean()), len(cand), b, c, passed, reason
    )
