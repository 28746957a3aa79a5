import subprocess
import sys

import numpy as np
import pytest

from services.evaluator.domain import robustness
from services.kernel.settings import REPO_ROOT

TEXTS = [
    "I still have not received my new card, I ordered over a week ago.",
    "Why was my transfer declined?",
    "How do I top up my account with cash?",
    "card payment fee charged",
]


@pytest.mark.parametrize("kind", robustness.PERTURBATIONS)
def test_same_seed_same_text_and_different_seed_different_text(kind):
    a = robustness.perturb_all(TEXTS, kind, seed=7)
    assert a == robustness.perturb_all(TEXTS, kind, seed=7)
    assert any(x != y for x, y in zip(a, TEXTS, strict=True)), "the perturbation changed nothing"
    others = [robustness.perturb_all(TEXTS, kind, seed=s) for s in range(8, 14)]
    assert any(o != a for o in others)


def test_reproducible_in_another_process_with_another_hash_seed():
    code = (
        "from services.evaluator.domain import robustness as r;"
        f"print(repr([r.perturb_all({TEXTS!r}, k, 7) for k in r.PERTURBATIONS]))"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": h, "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'protos'}"}).stdout
        for h in ("1", "2")
    }
    here = repr([robustness.perturb_all(TEXTS, k, 7) for k in robustness.PERTURBATIONS]) + "\n"
    assert outs == {here}


def test_a_row_noise_does_not_depend_on_other_rows():
    alone = robustness.perturb_all(TEXTS[:2], "typos", 3)
    assert robustness.perturb_all(TEXTS, "typos", 3)[:2] == alone


def test_typos_keep_the_text_readable():
    noisy = robustness.perturb_all(TEXTS, "typos", 1)
    for before, after in zip(TEXTS, noisy, strict=True):
        assert abs(len(before) - len(after)) <= 3
        assert len(after.split(" ")) == len(before.split(" "))


def test_drop_is_clean_minus_perturbed_accuracy():
    clean = np.array([1, 1, 1, 1], dtype=bool)
    r = robustness.robustness(clean, {"typos": np.array([1, 0, 1, 0], bool), "casing": clean}, {"typos": 4}, seed=1)
    assert r.clean_accuracy == 1.0
    assert r.perturbed_accuracy == pytest.approx(0.75)
    assert r.drop == pytest.approx(0.25)
    assert [(p.kind, p.drop) for p in r.per_kind] == [("typos", 0.5), ("casing", 0.0)]


def test_sample_rows_is_seeded_and_sorted():
    a = robustness.sample_rows(1000, 50, 9)
    assert a.tolist() == robustness.sample_rows(1000, 50, 9).tolist() == sorted(set(a.tolist()))
    assert len(a) == 50
    assert robustness.sample_rows(10, 50, 9).tolist() == list(range(10))
