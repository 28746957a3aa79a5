"""Rollout decisions as the deployment.* events they announce (the codec between domain and wire)."""

from __future__ import annotations

from tuneline.events.v1 import events_pb2 as ev

from services.deployer.domain.rollout import Adapter, Decision, Held, Promoted, Resumed, Reviewed, RolledBack, Started, StepRecord
from services.kernel.events import Outgoing


def ref_of(a: Adapter) -> ev.ArtifactRef:
    """The adapter's artifact reference."""
    return ev.ArtifactRef(digest=a.digest, uri=a.uri, media_type=a.media_type, size_bytes=a.size_bytes)


def _step(s: StepRecord) -> ev.RolloutStep:
    return ev.RolloutStep(percent=s.percent, requests=s.requests, errors=s.errors, p99_ms=s.p99_ms,
                          agreement=s.agreement, seconds=s.seconds)


def events_for(goal: str, decisions: tuple[Decision, ...], decision_to_zero_ms: float) -> list[Outgoing]:
    """The events to emit for a transition's decisions (advances, pending approvals and unloads emit none)."""
    out: list[Outgoing] = []
    for d in decisions:
        if isinstance(d, Started):
            a = d.adapter
            out.append(Outgoing(ev.DeploymentStarted(
                deployment_id=a.deployment_id, goal_name=goal, goal_version=a.goal_version, adapter=ref_of(a),
                strategy=d.strategy, champion_digest=d.champion_digest, eval_id=a.eval_id, run_id=a.run_id,
                dataset_version=a.dataset_version, traffic_percent=d.percent), goal))
        elif isinstance(d, Promoted):
            a = d.adapter
            out.append(Outgoing(ev.DeploymentPromoted(
                deployment_id=a.deployment_id, goal_name=goal, goal_version=a.goal_version, adapter=ref_of(a),
                previous_champion_digest=d.previous_digest, steps=[_step(s) for s in d.steps], reason=d.reason,
                dataset_version=a.dataset_version, run_id=a.run_id, eval_id=a.eval_id), goal))
        elif isinstance(d, RolledBack):
            out.append(Outgoing(ev.DeploymentRolledBack(
                deployment_id=d.adapter.deployment_id, goal_name=goal, adapter_digest=d.adapter.digest,
                restored_digest=d.restored_digest, trigger=d.trigger, reason=d.reason, numbers=dict(d.numbers),
                incident_id=d.incident_id, decision_to_zero_ms=decision_to_zero_ms), goal))
        elif isinstance(d, Reviewed):
            a = d.adapter
            reviewed = ev.DeploymentApproved() if d.approved else ev.DeploymentRejected()
            reviewed.deployment_id, reviewed.goal_name, reviewed.reason = a.deployment_id, goal, d.reason
            reviewed.eval_id, reviewed.run_id, reviewed.goal_version = a.eval_id, a.run_id, a.goal_version
            reviewed.adapter.CopyFrom(ref_of(a))
            if isinstance(reviewed, ev.DeploymentApproved):
                reviewed.approved_by = d.by
            else:
                reviewed.rejected_by = d.by
            out.append(Outgoing(reviewed, goal))
        elif isinstance(d, Held):
            out.append(Outgoing(ev.DeploymentHeld(
                deployment_id=d.adapter.deployment_id, goal_name=goal, adapter=ref_of(d.adapter), held_by=d.by,
                reason=d.reason, percent=d.percent, state=d.state), goal))
        elif isinstance(d, Resumed):
            out.append(Outgoing(ev.DeploymentResumed(
                deployment_id=d.adapter.deployment_id, goal_name=goal, adapter=ref_of(d.adapter), resumed_by=d.by,
                reason=d.reason, held_seconds=d.held_seconds), goal))
    return out
