"""Fixtures for the rollout controller: real SQLite store, blob store and RoutingTable, a fake pool.

Adapters are stored and signed as the trainer does (`tests.support.signed_adapter`); `World.passed`
carries the trainer's artifact signature, so the deployer admits them unless a test removes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.deployer.controller import Controller
from services.deployer.domain.routing import RoutingTable
from services.deployer.handlers import REQUIRED_CRITERIA, on_eval_passed, on_goal_applied
from services.deployer.store import MIGRATIONS, SERVICE
from services.kernel.artifact_signing import ArtifactVerifier
from services.kernel.blobs import BlobStore
from services.kernel.events import Incoming
from services.kernel.goal import Goal, parse_goal
from services.kernel.ids import uuid7
from services.kernel.retry import RetryPolicy
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import Store
from tests.support import signed_adapter

M = TypeVar("M", bound=Message)


class FakePool:
    """Records loads and unloads like the AdapterPool, without a model."""

    def __init__(self) -> None:
        self.digests: set[str] = set()
        self.loads: list[str] = []

    def load(self, digest: str, adapter_dir: Path) -> None:
        assert (adapter_dir / "adapter_model.safetensors").exists()
        self.digests.add(digest)
        self.loads.append(digest)

    def unload(self, digest: str) -> None:
        self.digests.discard(digest)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def incoming(message: M, subject: str = "g") -> Incoming[M]:
    return Incoming(id=uuid7(), type="x", source="test", time=datetime.now(UTC), subject=subject, message=message)


def make_goal(strategy: str = "canary", **rollout: object) -> Goal:
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    data["name"] = "g"
    data["rollout"] = {"strategy": strategy, "steps": [10, 50, 100], "min_requests_per_step": 50,
                       "min_step_seconds": 0, "max_step_seconds": 600, "min_agreement": 0.9, **rollout}
    return parse_goal(data)


class World:
    """One deployer's rollout half on a temporary state folder."""

    def __init__(self, tmp: Path) -> None:
        self.settings = Settings(state_dir=tmp, namespace=f"t{uuid7()}.")
        self.store = Store.open(self.settings, SERVICE, MIGRATIONS)
        self.blobs = BlobStore(str(tmp / "artifacts"))
        self.clock = Clock()
        self.pool = FakePool()
        self.routing = RoutingTable()
        self.controller = self.new_controller()
        self.goal = make_goal()
        self.artifacts = ArtifactVerifier(self.settings)
        self.on_eval_passed = partial(on_eval_passed, artifacts=self.artifacts)
        self.signatures: dict[str, ev.ArtifactRef] = {}

    def new_controller(self, **options: RetryPolicy) -> Controller:
        return Controller(self.store, self.blobs, self.pool, self.routing, self.settings.path("adapters", "x").parent,
                          clock=self.clock, **options)

    incoming = staticmethod(incoming)
    make_goal = staticmethod(make_goal)

    def apply(self, goal: Goal) -> None:
        self.goal = goal
        msg = ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())
        with self.store.session() as s:
            on_goal_applied(incoming(msg), s, controller=self.controller)

    def adapter(self, n: int) -> ev.ArtifactRef:
        """A stored adapter (a LoRA adapter's four files, not a model: the pool is fake), signed by the trainer."""
        folder = self.settings.path("src", str(n), "x").parent
        (folder / "adapter_config.json").write_text(f'{{"n": {n}}}')
        (folder / "adapter_model.safetensors").write_bytes(bytes([n]) * 64)
        (folder / "head.safetensors").write_bytes(bytes([n]) * 16)
        (folder / "labels.json").write_text('{"labels": ["a", "b"]}')
        tree, signature = signed_adapter(self.settings, self.blobs, folder)
        self.signatures[tree.digest] = signature
        return tree

    def passed(self, ref: ev.ArtifactRef, passed: bool = True, failing: tuple[str, ...] = ()) -> ev.EvalPassed:
        criteria = [ev.Criterion(name=c, passed=c not in failing, computed=True) for c in REQUIRED_CRITERIA]
        return ev.EvalPassed(outcome=ev.EvalOutcome(
            eval_id=uuid7(), run_id=uuid7(), goal_name=self.goal.name, goal_version=self.goal.version,
            dataset_version="sha256:ds", adapter=ref, adapter_signature=self.signatures.get(ref.digest), passed=passed,
            criteria=criteria))


@pytest.fixture
def world(tmp_path: Path):
    w = World(tmp_path)
    w.apply(w.goal)
    w.controller.start()
    yield w
    w.controller.stop()
    w.store.dispose()
