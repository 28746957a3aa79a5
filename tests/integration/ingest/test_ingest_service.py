"""The ingest service through the real broker: registrations, idempotence, rejections, PII, SIGKILL."""

from __future__ import annotations

import csv
import random
import signal
import tempfile
from pathlib import Path

import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.ingest.certify import certify
from services.ingest.domain.uri import check_uri
from services.ingest.plan import Plan, Policy
from services.kernel.ids import digest_json, sha256_file

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
DATASETS = ("banking77", "clinc150", "hwu64")


def _expected_version(name: str) -> str:
    """The version computed in this process, in another folder: the same bytes must give the same digest."""
    with tempfile.TemporaryDirectory() as work:
        loc = check_uri(str(REPO / "datasets" / name / "train.csv"), [REPO], [])
        r = certify(Plan(name, loc), Policy(), Path(work))
        assert r.train is not None and r.eval is not None, r.certificate
        return digest_json([sha256_file(r.train), sha256_file(r.eval)])


def test_three_datasets_register_with_stable_versions_and_once(ingest_env):
    ids = {n: ingest_env.publish(ev.DatasetPublished(dataset_name=n, uri=str(REPO / "datasets" / n / "train.csv"),
                                                     publisher="test", lineage={"job": "etl-1"})) for n in DATASETS}
    got = ingest_env.wait_for(lambda: (r := ingest_env.read("dataset.registered")) and len(r) >= 3 and r, 300, "3 registrations")
    by_name = {e.message.dataset_name: e.message for e in got}
    assert set(by_name) == set(DATASETS)
    for name, msg in by_name.items():
        assert msg.published_event_id == ids[name] and msg.lineage["job"] == "etl-1" and msg.publisher == "test"
        assert {g.gate for g in msg.certificate} == {"schema", "pii", "minimisation", "dedup", "leakage", "labels"}
        assert msg.dataset_version == digest_json([msg.train.digest, msg.eval.digest])
        assert sha256_file(msg.train.uri) == msg.train.digest
    assert by_name["banking77"].dataset_version == _expected_version("banking77")
    # The same bytes again: same version, no second registration.
    ingest_env.publish(ev.DatasetPublished(dataset_name="banking77", uri=str(REPO / "datasets/banking77/train.csv")))
    ingest_env.wait_for(lambda: ingest_env.settled() and len(_jobs(ingest_env)) == 4, 120, "the second publication handled")
    assert len(ingest_env.read("dataset.registered")) == 3 and not ingest_env.read("dataset.rejected")


def _jobs(env):
    import sqlalchemy as sa

    from services.kernel.store import jobs

    engine = sa.create_engine(f"sqlite:///{env.settings.state_dir / 'stores' / 'ingest.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.id, jobs.c.status)).all()
    engine.dispose()
    return rows


def test_hostile_and_pii_datasets_are_rejected_or_scrubbed_without_leaking(ingest_env, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("text,label\nsecret,x\n")
    (ingest_env.data / "link.csv").symlink_to(secret)
    hostile = [str(secret), str(ingest_env.data / "link.csv"), f"{ingest_env.data}/../secret.csv",
               f"file://{ingest_env.data}/%2e%2e/secret.csv", str(ingest_env.data / "missing.csv"), "s3://bucket/x.csv"]
    for i, uri in enumerate(hostile):
        ingest_env.publish(ev.DatasetPublished(dataset_name=f"hostile{i}", uri=uri))
    emails = [f"person{i}@example{i}.org" for i in range(40)]
    rng = random.Random(1)
    with open(ingest_env.data / "pii.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i, e in enumerate(emails):
            w.writerow([" ".join(rng.sample([f"word{j}" for j in range(300)], 8)) + f" mail {e}", f"l{i % 4}"])
    ingest_env.publish(ev.DatasetPublished(dataset_name="pii", uri=str(ingest_env.data / "pii.csv")))
    rejected = ingest_env.wait_for(lambda: (r := ingest_env.read("dataset.rejected")) and len(r) >= len(hostile) and r, 180, "rejections")
    reasons = {e.message.dataset_name: e.message.failed_gates[0].reason for e in rejected}
    assert all("outside the allowed data roots" in reasons[f"hostile{i}"] for i in (0, 1))
    assert all("'..'" in reasons[f"hostile{i}"] for i in (2, 3))
    assert "does not exist" in reasons["hostile4"] and "not allowed" in reasons["hostile5"]
    reg = ingest_env.wait_for(lambda: [e for e in ingest_env.read("dataset.registered") if e.message.dataset_name == "pii"], 120,
                              "pii registered")
    assert {g.gate: dict(g.counts) for g in reg[0].message.certificate}["pii"]["email"] == len(emails)
    ingest_env.wait_for(ingest_env.settled, 60, "settled")
    everything = Path(reg[0].message.train.uri).read_bytes() + Path(reg[0].message.eval.uri).read_bytes()
    everything += reg[0].message.SerializeToString() + (tmp_path / "ingest.log").read_bytes()
    everything += b"".join(p.read_bytes() for p in ingest_env.settings.state_dir.rglob("*") if p.is_file() and p.suffix != ".db")
    assert [e for e in emails if e.encode() in everything] == []
    assert not [e for e in ingest_env.read("dataset.registered") if e.message.dataset_name.startswith("hostile")]


def test_sigkill_mid_ingest_then_restart_registers_exactly_once(ingest_env):
    path = ingest_env.data / "big.csv"
    rng = random.Random(2)
    vocab = [f"v{i}" for i in range(5000)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(150_000):
            w.writerow([" ".join(rng.choices(vocab, k=10)), f"l{i % 20}"])
    ingest_env.publish(ev.DatasetPublished(dataset_name="big", uri=str(path)))
    ingest_env.wait_for(lambda: ingest_env.progress() > 0, 120, "the ingest job to start")
    ingest_env.proc.kill(signal.SIGKILL)
    assert not ingest_env.read("dataset.registered")
    ingest_env.proc.start()
    ingest_env.wait_for(lambda: ingest_env.read("dataset.registered"), 300, "the registration after restart")
    ingest_env.wait_for(ingest_env.settled, 60, "settled")
    regs = ingest_env.read("dataset.registered")
    assert len(regs) == 1 and regs[0].message.train_rows + regs[0].message.eval_rows > 140_000
