"""Decisions as a test playing the other services publishes them to a real deployer: approvals, goals,
raw records (signed or not), and the goal version the deployer holds."""

from __future__ import annotations

from collections import Counter

import grpc
import sqlalchemy as sa
from confluent_kafka import Producer
from tuneline.events.v1 import events_pb2 as ev
from tuneline.serving.v1 import inference_pb2 as pb
from tuneline.serving.v1 import inference_pb2_grpc as pb_grpc

from services.deployer.handlers import REQUIRED_CRITERIA
from services.kernel.events import Outgoing, Record, encode
from services.kernel.goal import Goal
from services.kernel.goals import latest_goal
from services.kernel.ids import uuid7
from services.kernel.settings import Settings
from services.kernel.store import Store


def approval(goal: Goal, adapter: ev.ArtifactRef, signature: ev.ArtifactRef | None = None) -> ev.EvalPassed:
    """An eval.passed of `adapter` for the goal, every required criterion passed."""
    criteria = [ev.Criterion(name=c, passed=True, computed=True) for c in REQUIRED_CRITERIA]
    return ev.EvalPassed(outcome=ev.EvalOutcome(
        eval_id=uuid7(), run_id=uuid7(), goal_name=goal.name, goal_version=goal.version, dataset_version="sha256:" + "d" * 64,
        adapter=adapter, adapter_signature=signature, passed=True, criteria=criteria))


def goal_applied(goal: Goal) -> ev.GoalApplied:
    """The goal.applied that puts `goal` in force."""
    return ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())


def produce(settings: Settings, records: list[Record]) -> None:
    """Send records as any Kafka client can (a raw producer, no outbox)."""
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    for r in records:
        producer.produce(r.topic, r.value, r.key, headers=list(r.headers))
    assert producer.flush(30) == 0


def record(settings: Settings, message: ev.EvalPassed | ev.GoalApplied | ev.RollbackRequested, subject: str) -> Record:
    """The record of an event, unsigned (tests.support.signed signs it as the service that may decide it)."""
    out = Outgoing(message, subject)
    return encode(out, topic=settings.topic(out.event), source="evaluator/forger")


def goal_in_force(settings: Settings, name: str) -> str:
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


def served_by(settings: Settings, goal: str, n: int, token: str = "") -> Counter[str]:
    """Ask the deployer n predictions for the goal; how many each adapter answered."""
    served: Counter[str] = Counter()
    with grpc.insecure_channel(settings.deployer_address) as channel:
        stub = pb_grpc.InferenceStub(channel)
        for i in range(n):
            reply = stub.Predict(pb.PredictRequest(goal=goal, text=f"I lost my card number {i}", request_id=uuid7()),
                                 metadata=(("authorization", f"Bearer {token or settings.grpc_token}"),), timeout=30)
            served[reply.adapter_digest] += 1
    return served
