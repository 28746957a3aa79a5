"""The registry's stages (services.monitor.registry) on the monitor's real store: whatever order the
ledger received the events in, the stages are the ones the events, in the order they happened, give."""

from __future__ import annotations

import random

import pytest
import yaml
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.goal import parse_goal
from services.kernel.settings import REPO_ROOT
from services.kernel.store import Store
from services.monitor import audit, handlers, registry

GOAL = "banking77"
A, B, C, D = ("sha256:" + c * 64 for c in "abcd")


def _ref(digest: str) -> ev.ArtifactRef:
    return ev.ArtifactRef(digest=digest)


def _passed(digest: str, run: str, ok: bool = True) -> Message:
    outcome = ev.EvalOutcome(eval_id=f"eval-{run}", run_id=run, goal_name=GOAL, adapter=_ref(digest), passed=ok,
                             metrics={"accuracy": 0.9})
    return ev.EvalPassed(outcome=outcome) if ok else ev.EvalFailed(outcome=outcome)


# (seconds, event): A becomes champion; B canaries and is promoted over it, then rolled back (A again);
# C fails its gate; D waits for approval and a person rejects it. Two events share each second.
STORY: list[tuple[float, Message]] = [
    (1, _passed(A, "run-a")), (1, ev.DeploymentStarted(deployment_id="d-a", goal_name=GOAL, adapter=_ref(A))),
    (2, ev.DeploymentPromoted(deployment_id="d-a", goal_name=GOAL, adapter=_ref(A))),
    (3, _passed(B, "run-b")), (3, ev.DeploymentStarted(deployment_id="d-b", goal_name=GOAL, adapter=_ref(B), champion_digest=A)),
    (4, ev.DeploymentHeld(deployment_id="d-b", goal_name=GOAL, adapter=_ref(B), held_by="ops-lead", reason="look first")),
    (5, ev.DeploymentResumed(deployment_id="d-b", goal_name=GOAL, adapter=_ref(B), resumed_by="ops-lead")),
    (6, ev.DeploymentPromoted(deployment_id="d-b", goal_name=GOAL, adapter=_ref(B), previous_champion_digest=A)),
    (6, _passed(C, "run-c", ok=False)),
    (7, ev.DeploymentRolledBack(deployment_id="d-b", goal_name=GOAL, adapter_digest=B, restored_digest=A, trigger="drift",
                                reason="drift share 0.8")),
    (8, _passed(D, "run-d")),
    (9, ev.DeploymentRejected(deployment_id="d-d", goal_name=GOAL, adapter=_ref(D), rejected_by="approver", reason="no")),
]


def _record(store: Store, make_incoming, order: list[int], tenant: str = "acme") -> None:
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    goal = parse_goal({**data, "tenant": tenant})
    with store.session() as s:
        handlers.on_goal_applied(make_incoming(ev.GoalApplied(goal_name=GOAL, goal_version=goal.version,
                                                              goal_json=goal.canonical_json())), s)
        for i in order:
            at, message = STORY[i]
            audit.append_event(make_incoming(message, at_s=at), s)


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_stages_follow_the_events_in_whatever_order_the_ledger_received_them(store: Store, make_incoming, seed) -> None:
    order = list(range(len(STORY)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    _record(store, make_incoming, order)
    with store.session() as s:
        found = {m.adapter_digest: m for m in registry.models(s, lambda _g: True, GOAL)}
        champions = registry.models(s, lambda _g: True, stage="champion")
    assert {d: m.stage for d, m in found.items()} == {A: "champion", B: "retired", C: "refused", D: "refused"}
    assert [m.adapter_digest for m in champions] == [A], "one champion per goal: the one the rollback restored"
    assert not found[B].held, "resumed, then rolled back"
    assert [(e.event, e.by) for e in found[D].history][-1] == ("deployment.rejected", "approver")
    assert [e.event for e in found[B].history] == ["eval.passed", "deployment.started", "deployment.held", "deployment.resumed",
                                                   "deployment.promoted", "deployment.rolled_back"]


def test_a_held_canary_says_so_and_another_tenant_sees_nothing(store: Store, make_incoming) -> None:
    _record(store, make_incoming, [0, 1, 2, 3, 4, 5])
    with store.session() as s:
        mine = {m.adapter_digest: m for m in registry.models(s, lambda g: g == GOAL)}
        theirs = registry.models(s, lambda _g: False)
        runs = registry.evals(s, lambda _g: False)
    assert mine[B].stage == "canary" and mine[B].held, "held at 4 s"
    assert mine[A].stage == "champion"
    with store.session() as s:
        at, resumed = STORY[6]
        audit.append_event(make_incoming(resumed, at_s=at), s)
    with store.session() as s:
        assert not {m.adapter_digest: m.held for m in registry.models(s, lambda _g: True)}[B]
    assert theirs == [] and runs == []
