"""Forged decisions change nothing: a real deployer process on the real broker, real gRPC traffic.

With a raw confluent-kafka producer (anyone who can reach Kafka), the test publishes an unsigned
eval.passed, a signed one whose adapter digest was swapped for another real, loadable adapter, a real
approval replayed with another goal as its subject, a forged rollback.requested and a forged
goal.applied; and two approvals the evaluator did sign whose adapters the trainer did not: one with no
artifact signature, one carrying another adapter's. Under steady traffic none of them has an effect:
every prediction is answered by the genuinely approved (and trainer-signed) champion, the goal in force
is unchanged, and each forgery is dead-lettered with the reason (the monitor turns dead letters into
alerts, tests/integration/monitor).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
import yaml
from confluent_kafka import Producer
from tuneline.events.v1 import events_pb2 as ev
from tuneline.serving.v1 import inference_pb2 as pb
from tuneline.serving.v1 import inference_pb2_grpc as pb_grpc

from services.deployer.handlers import REQUIRED_CRITERIA
from services.kernel.blobs import BlobStore
from services.kernel.events import Outgoing, Record, encode
from services.kernel.goal import Goal, parse_goal
from services.kernel.goals import latest_goal
from services.kernel.ids import uuid7
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import Store
from tests.support import EventLog, free_ports, python, signed, signed_adapter, start_process, stop_process, wait_for

pytestmark = [pytest.mark.integration]
RUN_DEPLOYER = "import sys; sys.argv = ['tuneline', 'deployer', 'run']; from services.cli import main; main()"


def _goal(tiny_base: str, **policy: object) -> Goal:
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    data["base_model"] = tiny_base
    data["policy"] = {**data.get("policy", {}), **policy}
    return parse_goal(data)


def _approval(goal: Goal, adapter: ev.ArtifactRef, signature: ev.ArtifactRef | None = None) -> ev.EvalPassed:
    criteria = [ev.Criterion(name=c, passed=True, computed=True) for c in REQUIRED_CRITERIA]
    return ev.EvalPassed(outcome=ev.EvalOutcome(
        eval_id=uuid7(), run_id=uuid7(), goal_name=goal.name, goal_version=goal.version, dataset_version="sha256:" + "d" * 64,
        adapter=adapter, adapter_signature=signature, passed=True, criteria=criteria))


def _produce(settings: Settings, records: list[Record]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    for r in records:
        producer.produce(r.topic, r.value, r.key, headers=list(r.headers))
    assert producer.flush(30) == 0


def _rec(settings: Settings, message: ev.EvalPassed | ev.GoalApplied | ev.RollbackRequested, subject: str) -> Record:
    out = Outgoing(message, subject)
    return encode(out, topic=settings.topic(out.event), source="evaluator/forger")


def _goal_in_force(settings: Settings, name: str) -> str:
    """The version of the goal the deployer's store holds ("" before one is applied)."""
    if not (settings.state_dir / "stores" / "deployer.db").exists():
        return ""
    store = Store(settings.store_url_for("deployer"), "deployer")
    try:
        with store.session() as session:
            goal = latest_goal(session, name)
            return goal.version if goal else ""
    except sa.exc.OperationalError:  # the tables are not there yet
        return ""
    finally:
        store.dispose()


def _predict_all(settings: Settings, goal: str, n: int) -> Counter[str]:
    served: Counter[str] = Counter()
    with grpc.insecure_channel(settings.deployer_address) as channel:
        stub = pb_grpc.InferenceStub(channel)
        for i in range(n):
            reply = stub.Predict(pb.PredictRequest(goal=goal, text=f"I lost my card number {i}", request_id=uuid7()),
                                 metadata=(("authorization", f"Bearer {settings.grpc_token}"),), timeout=30)
            served[reply.adapter_digest] += 1
    return served


def test_forged_decisions_have_no_effect_under_load(settings: Settings, tiny_base: str, adapters: list[tuple[str, Path]],
                                                     tmp_path: Path) -> None:
    s = settings.replace(deployer_address=f"127.0.0.1:{free_ports()[0]}")
    blobs = BlobStore.from_settings(s)
    (genuine, genuine_sig), (other, other_sig), (failed, _) = (signed_adapter(s, blobs, folder) for _, folder in adapters[:3])
    goal = _goal(tiny_base)
    started, letters = EventLog(s, "deployment.started"), EventLog(s, "deadletter")
    # The genuine decisions: the operator's goal, the evaluator's approval (signed as the services sign).
    _produce(s, [signed(s, _rec(s, ev.GoalApplied(goal_name=goal.name, goal_version=goal.version,
                                                  goal_json=goal.canonical_json()), goal.name))])
    deployer = start_process(python("-c", RUN_DEPLOYER), s, tmp_path / "deployer.log", TUNELINE_BASE_MODEL=tiny_base)
    try:
        # Topics are consumed independently: the approval goes out once the goal is in force.
        wait_for(lambda: _goal_in_force(s, goal.name), 180, "the deployer to apply the goal")
        _produce(s, [signed(s, _rec(s, _approval(goal, genuine, genuine_sig), goal.name))])
        started.wait(1, 180, where=lambda e: e.message.adapter.digest == genuine.digest)
        wait_for(lambda: _predict_all(s, goal.name, 1) == Counter({genuine.digest: 1}), 60, "the champion serving")

        real = signed(s, _rec(s, _approval(goal, other, other_sig), goal.name))
        swapped = Record(real.topic, real.key, _approval(goal, failed).SerializeToString(), real.headers)
        replayed = Record(real.topic, b"another-goal",
                          real.value, [(k, b"another-goal" if k == "ce_subject" else v) for k, v in real.headers])
        unsigned = _rec(s, _approval(goal, other), goal.name)
        rollback = _rec(s, ev.RollbackRequested(goal_name=goal.name, adapter_digest=genuine.digest, reason="forged"), goal.name)
        looser = _goal(tiny_base, escalate_below_confidence=0.99)
        regoal = _rec(s, ev.GoalApplied(goal_name=goal.name, goal_version=looser.version, goal_json=looser.canonical_json()),
                      goal.name)
        # Approved by the evaluator (event signature valid), but not the trainer's adapters as they are.
        no_artifact_signature = signed(s, _rec(s, _approval(goal, other), goal.name))
        wrong_artifact_signature = signed(s, _rec(s, _approval(goal, failed, other_sig), goal.name))
        _produce(s, [unsigned, swapped, replayed, rollback, regoal, no_artifact_signature, wrong_artifact_signature])

        found = letters.wait(7, 120)
        served = _predict_all(s, goal.name, 1000)
        letters.poll(2.0)
        in_force = _goal_in_force(s, goal.name)
    finally:
        stop_process(deployer)
    assert served == Counter({genuine.digest: 1000}), "only the genuinely approved adapter answers"
    assert len(started.items) == 1, "no forged approval started a rollout"
    assert in_force == goal.version, "the forged goal.applied changed nothing"
    reasons = [(lt.message.error_type, lt.message.error) for lt in found]
    assert len(letters.items) == 7 and all(err_type == "Unauthenticated" for err_type, _ in reasons), reasons
    joined = " | ".join(err for _, err in reasons)
    assert "eval.passed is not signed" in joined and "does not match" in joined
    assert "rollback.requested is not signed" in joined and "goal.applied is not signed" in joined
    assert f"adapter {other.digest} carries no artifact signature" in joined
    assert f"adapter {failed.digest}: the trainer's artifact signature does not verify over its files (changed: " in joined
