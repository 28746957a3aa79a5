"""The gates end to end on tmp files: PII recall (R30), leakage, malformed inputs, determinism."""

import hashlib
import random

import pyarrow.parquet as pq
import pytest

from services.kernel.pii import luhn_valid


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _card(rng, valid):
    digits = [rng.randrange(10) for _ in range(15)]
    for check in range(10):
        s = "".join(map(str, digits + [check]))
        if luhn_valid(s) == valid:
            return " ".join(s[i:i + 4] for i in range(0, 16, 4))
    raise AssertionError


def _iban(rng):
    bban = "".join(str(rng.randrange(10)) for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # DE = 13 14, check digits 00
    return f"DE{check:02d}{bban}"


def test_same_rows_in_any_order_give_the_same_snapshots(kit, tmp_path):
    rows = kit.sentences(200)
    a = kit.run_certify(tmp_path / "a", kit.write_csv(_mk(tmp_path / "a") / "d.csv", rows))
    b = kit.run_certify(tmp_path / "b", kit.write_csv(_mk(tmp_path / "b") / "d.csv", list(reversed(rows))))
    assert a.passed and b.passed
    assert _digest(a.train) == _digest(b.train) and _digest(a.eval) == _digest(b.eval)
    assert a.eval_rows == 20 and a.train_rows == 180  # 10 % of the 40 rows of each label, stratified
    assert pq.read_table(a.train).schema.names == ["text", "label"]
    assert pq.read_metadata(a.train).metadata is None or b"pandas" not in pq.read_metadata(a.train).metadata


def _mk(p):
    p.mkdir(parents=True, exist_ok=True)
    return p


def test_seeded_pii_is_scrubbed_with_full_recall_and_never_reaches_the_snapshot(kit, tmp_path, gate, caplog):
    rng = random.Random(5)
    rows = kit.sentences(100)
    seeded: list[str] = []
    invalid: list[str] = []
    for i in range(0, 100, 2):
        kind = i % 10
        value = {0: f"user{i}@mail{i}.com", 2: f"+44 20 7946 {1000 + i}", 4: _card(rng, True), 6: _iban(rng), 8: _card(rng, False)}[kind]
        (invalid if kind == 8 else seeded).append(value)
        rows[i] = (f"{rows[i][0]} contact {value} please", rows[i][1])
    result = kit.run_certify(tmp_path, kit.write_csv(tmp_path / "pii.csv", rows))
    assert result.passed
    pii = gate(result, "pii")
    found = sum(v for k, v in pii.counts.items() if k != "found")
    assert found == len(seeded), pii.counts  # recall 1.0 on the seeded set, no false positives
    snapshot = b"".join(pq.read_table(p).to_pandas().to_csv().encode() for p in (result.train, result.eval))
    everything = snapshot + repr(result.certificate).encode() + caplog.text.encode()
    assert not [v for v in seeded if v.encode() in everything]
    assert all(v.encode() in snapshot for v in invalid)  # invalid card numbers are left alone


def test_pii_reject_policy_rejects_with_counts(kit, tmp_path, gate):
    rows = kit.sentences(50)
    rows[3] = ("write to me at a.b@c.org", rows[3][1])
    result = kit.run_certify(tmp_path, kit.write_csv(tmp_path / "p.csv", rows), pii_action="reject")
    assert not result.passed and gate(result, "pii").counts["email"] == 1
    assert "a.b@c.org" not in repr(result.certificate)


def test_eval_rows_copied_or_edited_into_train_are_caught_exact_and_near(kit, tmp_path, gate):
    rows = kit.sentences(400, seed=9)
    train, evals = rows[:300], rows[300:]
    copied = evals[:3]                                         # 5 % of 100 eval rows: 3 exact, 2 edited
    edited = [(t.replace("a", "A", 1) + "!", lab) for t, lab in evals[3:4]] + [(t[:-1] + "x", lab) for t, lab in evals[4:5]]
    result = kit.run_certify(tmp_path, kit.write_csv(tmp_path / "train.csv", train + copied + edited),
                             kit.write_csv(tmp_path / "eval.csv", evals))
    leak = gate(result, "leakage")
    assert not result.passed and not leak.passed
    assert leak.counts["exact_train_eval"] == 3 + 1  # case/punctuation edits normalise to the same text
    assert leak.counts["near_train_eval"] == 1
    assert result.train is None


def test_duplicates_are_removed_and_counted(kit, tmp_path, gate):
    rows = kit.sentences(100)
    dupes = rows + [(rows[0][0].upper(), rows[0][1]), (rows[1][0] + "z", rows[1][1])]
    result = kit.run_certify(tmp_path, kit.write_csv(tmp_path / "d.csv", dupes))
    c = gate(result, "dedup").counts
    assert (c["exact_duplicates"], c["near_duplicates"], c["rows_out"]) == (1, 1, 100)


def test_too_few_examples_per_label_fail_the_label_gate(kit, tmp_path, gate):
    rows = kit.sentences(50) + [("a lonely example of a rare label", "rare")]
    result = kit.run_certify(tmp_path, kit.write_csv(tmp_path / "d.csv", rows))
    assert not gate(result, "labels").passed and gate(result, "labels").counts["labels_below_min"] == 1


BAD_INPUTS = {
    "wrong_columns": (lambda p: p.write_bytes(b"sentence,intent\na,b\n") and p, "wrong columns"),
    "empty": (lambda p: p.write_bytes(b"") and p, "empty"),
    "header_only": (lambda p: p.write_bytes(b"text,label\n") and p, "no rows"),
    "invalid_utf8": (lambda p: p.write_bytes(b"text,label\n" + b"ok row here,a\n" * 6 + b"bad \xff\xfe,a\n") and p, "invalid_utf8"),
    "row_10mb": (lambda p: p.write_bytes(b"text,label\nfine,a\n" + b"x" * 10_000_000 + b",a\n") and p, "larger than field limit"),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 40) and p, "binary"),
    "broken_quoting": (lambda p: p.write_bytes(b'text,label\n"unterminated,a\nmore,b\n') and p, "malformed"),
    "bad_quote_mid": (lambda p: p.write_bytes(b'text,label\nab"c"d,a\n"x"y,b\n') and p, "malformed"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_malformed_inputs_are_rejected_with_an_actionable_reason(kit, tmp_path, gate, case):
    make, expected = BAD_INPUTS[case]
    path = tmp_path / "bad.csv"
    make(path)
    result = kit.run_certify(tmp_path, path)
    schema = gate(result, "schema")
    assert not result.passed and not schema.passed and result.train is None
    assert expected in schema.reason + " ".join(schema.examples) + " ".join(schema.counts), schema


def test_republished_data_keeps_earlier_eval_rows_out_of_train(kit, tmp_path, gate):
    rows = kit.sentences(300, seed=4)
    first = kit.run_certify(_mk(tmp_path / "v1"), kit.write_csv(tmp_path / "v1" / "d.csv", rows[:240]))
    prior = tmp_path / "prior.parquet"
    prior.write_bytes(first.eval.read_bytes())
    v2 = _mk(tmp_path / "v2")
    second = kit.run_certify(v2, kit.write_csv(v2 / "d.csv", rows), prior_evals=(prior,))
    assert second.passed, second.certificate
    old_eval = set(pq.read_table(first.eval).column("text").to_pylist())
    assert old_eval <= set(pq.read_table(second.eval).column("text").to_pylist())
    assert gate(second, "leakage").counts["prior_eval_rows"] == len(old_eval)


def test_banking77_eval_rows_copied_or_typo_edited_into_train_are_caught(kit, tmp_path, gate):
    """5 % of banking77's eval rows copied (half) or typo-edited (half) into train: exact and near counts."""
    import csv
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    base = kit.run_certify(_mk(tmp_path / "base"), _copy(repo / "datasets/banking77/train.csv", tmp_path / "base"))
    train, evals = (pq.read_table(p).to_pylist() for p in (base.train, base.eval))
    rng = random.Random(11)
    picked = rng.sample(evals, round(0.05 * len(evals)))
    half = len(picked) // 2
    edited = [dict(r, text=_typo(rng, r["text"])) for r in picked[half:]]
    leak = _mk(tmp_path / "leak")
    for name, rows in (("train.csv", train + picked[:half] + edited), ("eval.csv", evals)):
        with open(leak / name, "w", newline="") as f:
            csv.writer(f).writerows([("text", "label")] + [(r["text"], r["label"]) for r in rows])
    result = kit.run_certify(leak, leak / "train.csv", leak / "eval.csv")
    counts = gate(result, "leakage").counts
    assert not result.passed and counts["exact_train_eval"] == half
    assert counts["near_train_eval"] >= 0.8 * len(edited)  # measured 20 of 23 at J >= 0.7 (MinHash noise)
    assert counts["near_train_eval"] <= len(edited)


def _copy(src, folder):
    dest = folder / src.name
    dest.write_bytes(src.read_bytes())
    return dest


def _typo(rng, text):
    """Swap two adjacent letters inside one word of four or more letters (or pluralise a short one)."""
    words = text.split()
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) > 3:
        j = rng.randrange(len(w) - 1)
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    else:
        w += "s"
    words[i] = w
    return " ".join(words)


def test_an_allowed_fsspec_url_is_read_like_a_local_file(kit, tmp_path):
    import csv
    import io
    import uuid

    import fsspec

    from services.ingest.certify import certify
    from services.ingest.domain.uri import check_uri
    from services.ingest.plan import Plan, Policy

    buf = io.StringIO()
    csv.writer(buf).writerows([("text", "label")] + kit.sentences(100))
    url = f"memory://ingest-{uuid.uuid4().hex}/d.csv"
    with fsspec.open(url, "w") as f:
        f.write(buf.getvalue())
    result = certify(Plan("m", check_uri(url, [], ["memory"])), Policy(), tmp_path)
    assert result.passed and result.train_rows + result.eval_rows == 100
