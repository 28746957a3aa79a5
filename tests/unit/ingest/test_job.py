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
