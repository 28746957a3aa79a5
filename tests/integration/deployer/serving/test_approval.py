"""People's decisions on a rollout (issue 16): a real deployer and a real monitor process on the real broker.

A goal with `rollout.approval: required`: every adapter that passes its gate waits, loaded, with no
traffic, until a person with an `operate` credential of the goal's tenant approves it (or rejects it);
hold freezes a canary at its step, resume lets it continue. The person acts through the CLI from a
second shell that has only the deployer's address and a token (an empty state folder); every decision
is an event in the monitor's ledger, with who made it and why.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import grpc
import pytest
import yaml
from tuneline.serving.v1 import inference_pb2 as pb
from tuneline.serving.v1 import inference_pb2_grpc as pb_grpc

from services.kernel.blobs import BlobStore
from services.kernel.credentials import credentials_path, issue
from services.kernel.goal import Goal, parse_goal
from services.kernel.settings import REPO_ROOT, Settings
from tests.integration.deployer.serving.decisions import approval, goal_applied, goal_in_force, produce, record, served_by
from tests.support import EventLog, free_ports, python, settings_env, signed, signed_adapter, start_process, stop_process, wait_for

pytestmark = [pytest.mark.integration]
RUN = "import sys; sys.argv = ['tuneline', '{}', 'run']; from services.cli import main; main()"
CLI = "import sys; sys.argv = ['tuneline', *sys.argv[1:]]; from services.cli import main; main()"


def _goal(tiny_base: str) -> Goal:
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    # A canary that stays at its first step for the whole test: min_requests_per_step is never reached.
    rollout = {**data.get("rollout", {}), "approval": "required", "min_requests_per_step": 100_000,
               "max_step_seconds": 3600}
    return parse_goal({**data, "base_model": tiny_base, "rollout": rollout})


def _cli(s: Settings, token: str, elsewhere: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tuneline ARGS` from a second shell: the deployer's and monitor's addresses and a token, no state folder."""
    env = settings_env(s, TUNELINE_GRPC_TOKEN=token, TUNELINE_STATE_DIR=str(elsewhere), COLUMNS="240")
    return subprocess.run(python("-c", CLI, *args), env=env, capture_output=True, text=True, timeout=120)


def _deployment(s: Settings, token: str, goal: str) -> pb.GoalDeployment:
    with grpc.insecure_channel(s.deployer_address) as channel:
        reply: pb.ListDeploymentsResponse = pb_grpc.AdminStub(channel).ListDeployments(
            pb.ListDeploymentsRequest(goal=goal), metadata=(("authorization", f"Bearer {token}"),), timeout=10)
    [d] = reply.deployments
    return d


def _waiting(s: Settings, token: str, goal: str, digest: str) -> pb.GoalDeployment | None:
    try:
        d = _deployment(s, token, goal)
    except grpc.RpcError:  # the goal has no rollout yet
        return None
    pending = [slot.adapter_digest for slot in d.slots if slot.role == "pending"]
    return d if d.state == "pending_approval" and pending == [digest] else None


def _refused(s: Settings, token: str, method: str, goal: str) -> grpc.StatusCode:
    with grpc.insecure_channel(s.deployer_address) as channel:
        try:
            getattr(pb_grpc.AdminStub(channel), method)(pb.ReviewRequest(goal=goal, reason="not mine to decide"),
                                                        metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        except grpc.RpcError as err:
            return err.code()
    return grpc.StatusCode.OK


def test_an_adapter_waits_for_a_person_and_every_decision_is_in_the_ledger_with_who(
        settings: Settings, tiny_base: str, adapters: list[tuple[str, Path]], tmp_path: Path) -> None:
    dep_port, mon_port = free_ports(2)
    s = settings.replace(deployer_address=f"127.0.0.1:{dep_port}", monitor_address=f"127.0.0.1:{mon_port}")
    blobs = BlobStore.from_settings(s)
    (first, first_sig), (second, second_sig), (third, third_sig) = (signed_adapter(s, blobs, f) for _, f in adapters[:3])
    goal = _goal(tiny_base)
    path = credentials_path(s)
    approver = issue(path, "risk-approver", goal.tenant, ["operate"], None)[0]
    app = issue(path, "app-predict", goal.tenant, ["predict"], None)[0]
    outsider = issue(path, "other-ops", "other-tenant", ["operate"], None)[0]
    auditor = issue(path, "auditor", goal.tenant, ["audit"], None)[0]
    logs = {e: EventLog(s, e) for e in ("deployment.approved", "deployment.rejected", "deployment.started",
                                         "deployment.held", "deployment.resumed")}
    elsewhere = tmp_path / "second-shell"
    elsewhere.mkdir()
    produce(s, [signed(s, record(s, goal_applied(goal), goal.name))])
    deployer = start_process(python("-c", RUN.format("deployer")), s, tmp_path / "deployer.log", TUNELINE_BASE_MODEL=tiny_base)
    monitor = start_process(python("-c", RUN.format("monitor")), s, tmp_path / "monitor.log")
    try:
        wait_for(lambda: goal_in_force(s, goal.name), 180, "the deployer to apply the goal")

        # The goal's first model waits too: nothing answers until a person approves it.
        produce(s, [signed(s, record(s, approval(goal, first, first_sig), goal.name))])
        wait_for(lambda: _waiting(s, approver, goal.name, first.digest), 180, "the first adapter to wait for approval")
        with pytest.raises(grpc.RpcError):
            served_by(s, goal.name, 1, app)
        done = _cli(s, approver, elsewhere, "deployments", "approve", goal.name, first.digest, "--reason", "eval report reviewed")
        assert done.returncode == 0 and "approved: its rollout started" in done.stdout, done.stdout + done.stderr
        logs["deployment.started"].wait(1, 60, where=lambda e: e.message.adapter.digest == first.digest)
        assert served_by(s, goal.name, 20, app) == Counter({first.digest: 20})

        # The second waits while the champion answers everything; only the goal's operators may decide.
        produce(s, [signed(s, record(s, approval(goal, second, second_sig), goal.name))])
        wait_for(lambda: _waiting(s, approver, goal.name, second.digest), 120, "the second adapter to wait")
        assert served_by(s, goal.name, 200, app) == Counter({first.digest: 200}), "a waiting adapter answers nothing"
        assert _refused(s, app, "Approve", goal.name) == grpc.StatusCode.PERMISSION_DENIED, "predict-only token"
        assert _refused(s, outsider, "Approve", goal.name) == grpc.StatusCode.PERMISSION_DENIED, "another tenant's operator"
        done = _cli(s, approver, elsewhere, "deployments", "reject", goal.name, "--reason", "escalates too often")
        assert done.returncode == 0 and "rejected: it will never serve" in done.stdout, done.stdout + done.stderr
        [rejected] = logs["deployment.rejected"].wait(1, 60)
        assert (rejected.message.adapter.digest, rejected.message.rejected_by) == (second.digest, "risk-approver")
        assert _deployment(s, approver, goal.name).state == "rejected"
        assert served_by(s, goal.name, 50, app) == Counter({first.digest: 50})

        # The third is approved into a canary; held, it keeps its share; resumed, it goes on.
        produce(s, [signed(s, record(s, approval(goal, third, third_sig), goal.name))])
        wait_for(lambda: _waiting(s, approver, goal.name, third.digest), 120, "the third adapter to wait")
        assert _cli(s, approver, elsewhere, "deployments", "approve", goal.name).returncode == 0
        logs["deployment.started"].wait(1, 60, where=lambda e: e.message.adapter.digest == third.digest)
        done = _cli(s, approver, elsewhere, "deployments", "hold", goal.name, "--reason", "waiting for the data team")
        assert done.returncode == 0, done.stdout + done.stderr
        [held] = logs["deployment.held"].wait(1, 60)
        assert (held.message.held_by, held.message.percent, held.message.state) == ("risk-approver", 10, "canary")
        shown = _cli(s, approver, elsewhere, "deployments", goal.name)
        assert "held by risk-approver" in shown.stdout, shown.stdout + shown.stderr
        served = served_by(s, goal.name, 300, app)
        assert set(served) == {first.digest, third.digest} and 10 <= served[third.digest] <= 60, served
        assert _deployment(s, approver, goal.name).state == "canary"
        assert _cli(s, approver, elsewhere, "deployments", "resume", goal.name, "--reason", "go").returncode == 0
        [resumed] = logs["deployment.resumed"].wait(1, 60)
        assert resumed.message.resumed_by == "risk-approver" and resumed.message.held_seconds > 0
        assert not _deployment(s, approver, goal.name).held
        [approved_first, approved_third] = logs["deployment.approved"].wait(2, 60)
        assert [(e.message.adapter.digest, e.message.approved_by, e.message.reason) for e in (approved_first, approved_third)] \
            == [(first.digest, "risk-approver", "eval report reviewed"), (third.digest, "risk-approver", "approved")]

        # The ledger has them, with who decided and the deployer's signature, answered to the second shell.
        def in_ledger() -> str | None:
            out = _cli(s, auditor, elsewhere, "lineage", third.digest).stdout
            return out if all(w in out for w in ("approved", "held", "resumed")) else None

        lineage = str(wait_for(in_ledger, 120, "the decisions in the ledger", interval_s=1.0))
        assert "risk-approver" in lineage and "deployer" in lineage, lineage
        rejected_lineage = _cli(s, auditor, elsewhere, "lineage", second.digest).stdout
        assert "rejected" in rejected_lineage and "escalates too often" in rejected_lineage, rejected_lineage
    finally:
        stop_process(deployer)
        stop_process(monitor)
        for log in logs.values():
            log.close()
