"""Issue 19's proof through ingest: a dataset seeded with every PII kind certifies with each value
counted under its kind, and no seeded value is left in the snapshots, the certificate, the logs or
any file ingest wrote while working."""

from __future__ import annotations

import logging
from collections import Counter

import pyarrow.parquet as pq

from benchmarks.pii_seeded import corpus
from services.kernel.pii import KINDS

LABELS = ["balance", "card_lost", "transfer", "refund", "pin"]


def _decoded(path):
    """A file's content as text would show it: parquet decoded (it may be compressed), others raw."""
    return pq.read_table(path).to_pandas().to_csv().encode() if path.suffix == ".parquet" else path.read_bytes()


def test_seeded_pii_of_every_kind_is_counted_and_reaches_no_snapshot_log_or_work_file(kit, tmp_path, gate, caplog):
    caplog.set_level(logging.DEBUG)
    seeded = corpus(20, seed=23)
    # A distinct tail per row keeps the near-duplicate gate from merging sentences of one template.
    filler = kit.sentences(len(seeded), seed=11)
    rows = [(f"{s.text} {tail}", LABELS[i % len(LABELS)]) for i, (s, (tail, _)) in enumerate(zip(seeded, filler, strict=True))]
    source = kit.write_csv(tmp_path / "seeded.csv", rows)
    result = kit.run_certify(tmp_path, source)
    assert result.passed, result.certificate
    pii = gate(result, "pii")
    assert {k: v for k, v in pii.counts.items() if k != "found"} == dict(Counter(s.kind for s in seeded))
    assert set(pii.counts) - {"found"} == set(KINDS)
    snapshot = b"".join(_decoded(p) for p in (result.train, result.eval))
    written = b"".join(_decoded(p) for p in (tmp_path / "work").rglob("*") if p.is_file())  # staging too
    everything = snapshot + written + repr(result.certificate).encode() + caplog.text.encode()
    assert not [s.value for s in seeded if s.value.encode() in everything]
    assert b"<IBAN>" in snapshot and b"<NAME>" in snapshot
