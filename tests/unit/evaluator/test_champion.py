import numpy as np
import pytest

from services.evaluator.domain.champion import compare, mcnemar_midp


def test_mid_p_matches_a_hand_computed_value():
    # b=1, c=9: X ~ Bin(10, 1/2); mid-p = 2 * (P(X=0) + P(X=1)/2) = 2 * (1 + 5) / 1024.
    stat, p = mcnemar_midp(1, 9)
    assert p == pytest.approx(12 / 1024)
    assert stat == pytest.approx((1 - 9) ** 2 / 10)


def test_no_discordant_rows_means_no_evidence():
    assert mcnemar_midp(0, 0) == (0.0, 1.0)
    assert mcnemar_midp(5, 5)[1] == pytest.approx(1.0)


def _rows(cand_only: int, champ_only: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    cand = [1] * cand_only + [0] * champ_only + [1] * both + [0] * neither
    champ = [0] * cand_only + [1] * champ_only + [1] * both + [0] * neither
    return np.array(cand, bool), np.array(champ, bool)


def test_a_significantly_worse_candidate_fails():
    cand, champ = _rows(cand_only=3, champ_only=30, both=100, neither=10)
    c = compare(cand, champ, "sha256:" + "a" * 64, min_delta=-1.0, significance=0.05)
    assert not c.passed and "significantly worse" in c.reason
    assert c.p_value < 1e-5 and c.delta < 0
    assert (c.candidate_only, c.champion_only, c.rows) == (3, 30, 143)


def test_a_slightly_worse_candidate_passes_a_negative_margin_but_not_a_zero_one():
    cand, champ = _rows(cand_only=10, champ_only=12, both=100, neither=10)
    assert compare(cand, champ, "d", min_delta=-0.05, significance=0.05).passed
    zero = compare(cand, champ, "d", min_delta=0.0, significance=0.05)
    assert not zero.passed and "below min_delta" in zero.reason


def test_a_better_candidate_passes():
    cand, champ = _rows(cand_only=20, champ_only=2, both=100, neither=10)
    assert compare(cand, champ, "d", min_delta=0.0, significance=0.05).passed
