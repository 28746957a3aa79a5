"""The split: seeded, stratified, order-independent, and sticky for earlier eval rows."""

import numpy as np

from services.ingest.domain.split import assign_eval


def _data(n=1000, labels=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**63, size=n, dtype=np.uint64), rng.integers(0, labels, size=n)


def test_split_is_stratified_seeded_and_independent_of_row_order():
    keys, codes = _data()
    mask = assign_eval(keys, codes, 0.1, 17)
    for label in range(7):
        n = int((codes == label).sum())
        assert mask[codes == label].sum() == max(1, round(n * 0.1))
    perm = np.random.default_rng(1).permutation(len(keys))
    assert (assign_eval(keys[perm], codes[perm], 0.1, 17) == mask[perm]).all()
    assert (assign_eval(keys, codes, 0.1, 18) != mask).any()


def test_rows_of_an_earlier_eval_split_stay_in_eval_when_the_data_grows():
    keys, codes = _data(1000)
    first = assign_eval(keys[:800], codes[:800], 0.1, 17)
    sticky = np.zeros(1000, dtype=bool)
    sticky[:800] = first
    grown = assign_eval(keys, codes, 0.1, 17, sticky)
    assert grown[:800][first].all()
    assert abs(int(grown.sum()) - 100) <= 7  # still about 10 %, not 10 % on top of the old eval
