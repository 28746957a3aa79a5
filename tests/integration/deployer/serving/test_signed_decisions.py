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

import pytest
import yaml
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.events import Record
from services.kernel.goal import Goal, parse_goal
from services.kernel.settings import REPO_ROOT, Settings
from tests.integration.deployer.serving.decisions import approval, goal_in_force, produce, record, served_by
from tests.support import EventLog, free_ports, python, signed, signed_adapter, start_process, stop_process, wait_for

pytestmark = [pytest.mark.integration]
RUN_DEPLOYER = "import sys; sys.argv = ['tuneline', 'deployer', 'run']; from services.cli import main; main()"


def _goal(tiny_base: str, **policy: object) -> Goal:
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    data["base_model"] = tiny_base
    data["policy"] = {**data.get("policy", {}), **policy}
    return parse_goal(data)


def test_forged_decisions_have_no_effect_under_load(settings: Settings, tiny_base: str, adapters: list[tuple[str, Path]],
                                                     tmp_path: Path) -> None:
    s = settings.replace(deployer_address=f"127.0.0.1:{free_ports()[0]}")
    blobs = BlobStore.from_settings(s)
    (genuine, genuine_sig), (other, other_sig), (failed, _) = (signed_adapter(s, blobs, folder) for _, folder in adapters[:3])
    goal = _goal(tiny_base)
    started, letters = EventLog(s, "deployment.started"), EventLog(s, "deadletter")
    # The genuine decisions: the operator's goal, the evaluator's approval (signed as the services sign).
    produce(s, [signed(s, record(s, ev.GoalApplied(goal_name=goal.name, goal_version=goal.version,
                                                  goal_json=goal.canonical_json()), goal.name))])
    deployer = start_process(python("-c", RUN_DEPLOYER), s, tmp_path / "deployer.log", TUNELINE_BASE_MODEL=tiny_base)
    try:
        # Topics are consumed independently: the approval goes out once the goal is in force.
        wait_for(lambda: goal_in_force(s, goal.name), 180, "the deployer to apply the goal")
        produce(s, [signed(s, record(s, approval(goal, genuine, genuine_sig), goal.name))])
        started.wait(1, 180, where=lambda e: e.message.adapter.digest == genuine.digest)
        wait_for(lambda: served_by(s, goal.name, 1) == Counter({genuine.digest: 1}), 60, "the champion serving")

        real = signed(s, record(s, approval(goal, other, other_sig), goal.name))
        swapped = Record(real.topic, real.key, approval(goal, failed).SerializeToString(), real.headers)
        replayed = Record(real.topic, b"another-goal",
                          real.value, [(k, b"another-goal" if k == "ce_subject" else v) for k, v in real.headers])
        unsigned = record(s, approval(goal, other), goal.name)
        rollback = record(s, ev.RollbackRequested(goal_name=goal.name, adapter_digest=genuine.digest, reason="forged"), goal.name)
        looser = _goal(tiny_base, escalate_below_confidence=0.99)
        regoal = record(s, ev.GoalApplied(goal_name=goal.name, goal_version=looser.version, goal_json=looser.canonical_json()),
                      goal.name)
        # Approved by the evaluator (event signature valid), but not the trainer's adapters as they are.
        no_artifact_signature = signed(s, record(s, approval(goal, other), goal.name))
        wrong_artifact_signature = signed(s, record(s, approval(goal, failed, other_sig), goal.name))
        produce(s, [unsigned, swapped, replayed, rollback, regoal, no_artifact_signature, wrong_artifact_signature])

        found = letters.wait(7, 120)
        served = served_by(s, goal.name, 1000)
        letters.poll(2.0)
        in_force = goal_in_force(s, goal.name)
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
