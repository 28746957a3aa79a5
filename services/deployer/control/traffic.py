"""A rollout's state carried to what serves: the goal's route in the RoutingTable, the adapters in the pool."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from tuneline.events.v1 import events_pb2 as ev

from services.deployer.domain.rollout import Adapter, Rollout
from services.deployer.domain.routing import GoalRoute, Mode, Role, RoutingTable, Slot
from services.kernel.artifact_signing import ArtifactVerifier, bundle_of
from services.kernel.blobs import BlobStore


class AdapterLoader(Protocol):
    """The part of the serving AdapterPool the controller uses."""

    def load(self, digest: str, adapter_dir: Path) -> object: ...

    def unload(self, digest: str) -> object: ...


class Traffic:
    """Moves a goal's traffic to match its rollout, and fetches and loads the adapters it needs."""

    def __init__(self, blobs: BlobStore, pool: AdapterLoader, routing: RoutingTable, adapters_dir: Path) -> None:
        self.blobs, self.pool, self.routing, self.adapters_dir = blobs, pool, routing, adapters_dir

    def adapter_dir(self, digest: str) -> Path:
        """Where an adapter's verified files live locally."""
        return self.adapters_dir / digest.removeprefix("sha256:")

    def admit(self, a: Adapter, signature: ev.ArtifactRef, artifacts: ArtifactVerifier) -> Path:
        """Fetch a newly approved adapter, verify the trainer's artifact signature over the fetched files, load it.

        Unauthenticated (nothing loaded) when the signature is missing or does not verify, IntegrityError when
        the bytes do not match the digest; either way the fetched files are removed (the pool serves from a
        private copy of its own, so an adapter already serving is not touched).
        """
        try:
            folder = self._fetch(a)
            artifacts.verify(folder, bundle_of(self.blobs, signature, a.digest), a.digest)
        except BaseException:
            shutil.rmtree(self.adapter_dir(a.digest), ignore_errors=True)
            raise
        self.pool.load(a.digest, folder)
        return folder

    def load(self, a: Adapter) -> Path:
        """Fetch (verifying the digest) and load an adapter that was admitted before (a restart's re-load).

        Only `admit` lets an adapter into a rollout, and it verified the signature over exactly the files of
        this digest; the digest check here binds what loads now to those files.
        """
        folder = self._fetch(a)
        self.pool.load(a.digest, folder)
        return folder

    def _fetch(self, a: Adapter) -> Path:
        ref = ev.ArtifactRef(digest=a.digest, uri=a.uri, media_type=a.media_type, size_bytes=a.size_bytes)
        return self.blobs.fetch_tree(ref, self.adapter_dir(a.digest))

    def unload(self, digest: str) -> None:
        """Take an adapter out of the pool (its memory goes once its requests have finished)."""
        self.pool.unload(digest)

    def route(self, r: Rollout) -> None:
        """Swap the goal's whole route for the one its rollout state calls for (one atomic step)."""
        self.routing.set(route_of(r, self.adapter_dir))


def route_of(r: Rollout, adapter_dir: Callable[[str], Path]) -> GoalRoute:
    """The route a rollout state calls for: champion, candidate (canary share or mirror) and policy."""
    champion = _slot(r.champion, "champion", 100 - r.candidate_percent, adapter_dir) if r.champion else None
    candidate: Slot | None = None
    mode: Mode = "none"
    if r.in_progress and r.candidate is not None:
        # A blue-green rollout is a mirror: the candidate shadows every request and answers none.
        role: Literal["canary", "mirror"] = "canary" if r.state == "canary" else "mirror"
        candidate, mode = _slot(r.candidate, role, r.candidate_percent, adapter_dir), role
    return GoalRoute(goal=r.goal, champion=champion, candidate=candidate, mode=mode,
                     escalate_below_confidence=r.policy.escalate_below_confidence,
                     blocked_labels=frozenset(r.policy.blocked_labels), log_text=r.policy.log_text,
                     log_retention_days=r.policy.log_retention_days)


def _slot(a: Adapter, role: Role, percent: int, adapter_dir: Callable[[str], Path]) -> Slot:
    return Slot(digest=a.digest, role=role, percent=percent, deployment_id=a.deployment_id,
                dataset_version=a.dataset_version, goal_version=a.goal_version, eval_id=a.eval_id,
                adapter_dir=adapter_dir(a.digest), traceparent=a.traceparent)
