"""The ingest job on a real SQLite store (no Kafka): goals decide the split, same bytes register once."""

import base64
import json
import threading
import uuid
from datetime import UTC, datetime

import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.ingest import handlers, job
from services.ingest.bootstrap import deps, open_store
from services.ingest.settings import IngestSettings
from services.kernel.events import Incoming
from services.kernel.goal import load_goal
from services.kernel.jobs import Job, JobContext
from services.kernel.settings import REPO_ROOT


@pytest.fixture
def env(tmp_path, kit):
    data = tmp_path / "data"
    data.mkdir()
    s = IngestSettings(state_dir=tmp_path / "state", namespace="u.", kafka_bootstrap="127.0.0.1:1", allowed_data_roots=[data])
    store = open_store(s)
    d = deps(s, store)
    kit.write_csv(data / "d.csv", kit.sentences(200))
    return d, data


def _incoming(message, event_id=None):
    return Incoming(id=event_id or str(uuid.uuid4()), type="x", source="t", time=datetime(2024, 1, 1, tzinfo=UTC), subject="s",
                    message=message)


def _run(d, published, event_id):
    payload = json.dumps({"event_id": event_id, "published": base64.b64encode(published.SerializeToString()).decode()})
    j = Job(event_id, handlers.JOB_KIND, event_id, payload, 1, "")
    return list(job.execute(j, JobContext(d.store, j, threading.Event()), d))


def test_goal_split_and_idempotent_registration(env):
    d, data = env
    goal = load_goal(REPO_ROOT / "goals" / "banking77.yaml")
    goal = goal.replace(data=goal.data.replace(dataset="mine", eval_fraction=0.2))
    with d.store.session() as s:
        handlers.on_goal_applied(_incoming(ev.GoalApplied(goal_name=goal.name, goal_version=goal.version,
                                                         goal_json=goal.canonical_json())), s)
    published = ev.DatasetPublished(dataset_name="mine", uri=str(data / "d.csv"), publisher="team", lineage={"job": "7"})
    [first] = _run(d, published, "e1")
    reg = first.message
    assert reg.eval_rows == 40 and reg.train_rows == 160 and reg.lineage["job"] == "7"  # the goal's 20 %
    assert _run(d, published, "e2") == []                                # same bytes, another event: nothing
    assert _run(d, published, "e1")[0].message.dataset_version == reg.dataset_version  # e1 resumed after a crash


def test_hostile_uri_gives_a_rejection_naming_the_source_gate(env, tmp_path):
    d, data = env
    [out] = _run(d, ev.DatasetPublished(dataset_name="x", uri=f"{data}/%2e%2e/secret.csv"), "e3")
    assert isinstance(out.message, ev.DatasetRejected)
    assert out.message.failed_gates[0].gate == "source" and "'..'" in out.message.summary


def _apply(d, goal):
    with d.store.session() as s:
        handlers.on_goal_applied(_incoming(ev.GoalApplied(goal_name=goal.name, goal_version=goal.version,
                                                         goal_json=goal.canonical_json())), s)


def _snapshot(d, reg, tmp_path):
    import pyarrow.parquet as pq

    return [pq.read_table(d.blobs.fetch_file(ref, tmp_path / f"{name}.parquet")).to_pylist()
            for name, ref in (("train", reg.train), ("eval", reg.eval))]


@pytest.mark.parametrize("slice_values", ["keep", "hash", "drop"])
def test_the_snapshot_keeps_what_the_goal_allows_and_the_certificate_says_what_was_left_behind(env, kit, tmp_path, slice_values):
    d, data = env
    rows = [(t, lab, f"customer-{i % 4}@example.org region-{i % 4}", "internal note", str(i))
            for i, (t, lab) in enumerate(kit.sentences(200))]
    kit.write_csv(data / "wide.csv", rows, ("text", "label", "account", "notes", "row_id"))
    goal = load_goal(REPO_ROOT / "goals" / "banking77.yaml")
    goal = goal.replace(task=goal.task.replace(slice_field="account"),
                        data=goal.data.replace(dataset="wide", slice_values=None if slice_values == "keep" else slice_values))
    _apply(d, goal)
    [out] = _run(d, ev.DatasetPublished(dataset_name="wide", uri=str(data / "wide.csv"), publisher="team"), "m1")
    reg = out.message
    assert isinstance(reg, ev.DatasetRegistered), reg
    gate = next(g for g in reg.certificate if g.gate == "minimisation")
    assert gate.passed and "notes" in gate.reason and "row_id" in gate.reason
    assert gate.counts["source_columns"] == 5
    snapshot = [r for part in _snapshot(d, reg, tmp_path) for r in part]
    kept = {k for r in snapshot for k in r}
    assert not kept & {"notes", "row_id", "account"}, "only text, label and slice are kept, under their own names"
    slices = {r.get("slice") for r in snapshot}
    raw = {f"customer-{i}@example.org region-{i}" for i in range(4)}
    if slice_values == "keep":
        assert slices == raw and gate.counts["dropped"] == 2
    elif slice_values == "hash":
        # Four values, four stable pseudonyms: per-slice evaluation still groups, the values are gone.
        assert len(slices) == 4 and not slices & raw and all(str(v).startswith("h-") for v in slices)
        assert gate.counts["hashed"] == 1 and "pseudonyms" in gate.reason
        assert reg.slice_field == "slice"
    else:
        assert "slice" not in kept and reg.slice_field == "" and gate.counts["dropped"] == 3
        assert "account" in gate.reason
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("*.parquet"))
    assert (b"example.org" in blob) == (slice_values == "keep"), "no slice value left in the stored snapshot unless kept"


def test_rows_per_gate_and_rejections_by_gate_are_counted(env, kit):
    from tests.support import local_metrics, metric_total

    d, data = env
    kit.write_csv(data / "dupes.csv", kit.sentences(150) + kit.sentences(50))  # 50 exact duplicates
    local_metrics()
    before = local_metrics()
    [registered] = _run(d, ev.DatasetPublished(dataset_name="dupes", uri=str(data / "dupes.csv")), "m1")
    [rejected] = _run(d, ev.DatasetPublished(dataset_name="x", uri="ftp://elsewhere/x.csv"), "m2")
    after = local_metrics()

    def delta(name, **labels):
        return metric_total(after, name, **labels) - metric_total(before, name, **labels)

    assert registered.event == "dataset.registered" and rejected.event == "dataset.rejected"
    rows = "tuneline_ingest_gate_rows_total"
    assert (delta(rows, gate="schema", direction="in"), delta(rows, gate="schema", direction="out")) == (200, 200)
    assert (delta(rows, gate="dedup", direction="in"), delta(rows, gate="dedup", direction="out")) == (200, 150)
    assert delta(rows, gate="leakage", direction="out") == registered.message.train_rows + registered.message.eval_rows
    assert delta("tuneline_ingest_rejections_total", gate="source") == 1
    assert delta("tuneline_ingest_rejections_total", gate="schema") == 0
