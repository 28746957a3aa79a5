"""The deployer's consumers as plain functions: a decoded event and named dependencies in, events out."""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.deployer.controller import Controller
from services.deployer.domain import rollout as machine
from services.deployer.domain.policy import Approval, refusal
from services.deployer.domain.rollout import Adapter, Rollout
from services.deployer.store import save_rollout
from services.kernel.artifact_signing import ArtifactVerifier
from services.kernel.errors import InvalidInput
from services.kernel.events import Incoming, Outgoing
from services.kernel.goal import REQUIRED_CRITERIA as REQUIRED_CRITERIA  # re-exported: what every approval must carry
from services.kernel.goals import TenantDirectory, apply_goal, latest_goal
from services.kernel.ids import uuid7
from services.kernel.telemetry import current_traceparent

log = logging.getLogger(__name__)


def on_goal_applied(inc: Incoming[ev.GoalApplied], session: Session, *, controller: Controller,
                    tenants: TenantDirectory | None = None) -> list[Outgoing]:
    """Keep the latest goal per name; a deployed goal's serving policy and tenant change at once."""
    goal = apply_goal(inc, session)
    if tenants is not None:
        tenants.note(goal)
    changed = controller.set_policy(goal.name, machine.policy_of(goal))
    if changed is not None:
        save_rollout(session, changed)
    return []


def approval_of(outcome: ev.EvalOutcome) -> Approval:
    """What the deployer checks of an evaluation outcome."""
    return Approval(goal=outcome.goal_name, goal_version=outcome.goal_version, digest=outcome.adapter.digest,
                    uri=outcome.adapter.uri, passed=outcome.passed,
                    criteria=tuple((c.name, c.passed) for c in outcome.criteria))


def adapter_of(outcome: ev.EvalOutcome, deployment_id: str) -> Adapter:
    """The adapter an evaluation approved, as the rollout remembers it."""
    a = outcome.adapter
    return Adapter(digest=a.digest, uri=a.uri, media_type=a.media_type, size_bytes=a.size_bytes,
                   deployment_id=deployment_id, goal_version=outcome.goal_version,
                   dataset_version=outcome.dataset_version, eval_id=outcome.eval_id, run_id=outcome.run_id,
                   traceparent=current_traceparent())


def on_eval_passed(inc: Incoming[ev.EvalPassed], session: Session, *, controller: Controller,
                   artifacts: ArtifactVerifier) -> list[Outgoing]:
    """Verify the approval and the bytes, load the adapter, start the goal's rollout strategy.

    The approval's event signature was checked before this runs (the consumer's Verifier); here the
    adapter's own signature is: the trainer's model-signing bundle must verify over the fetched files
    against the trainer's artifact keys, else Unauthenticated and the approval is dead-lettered (an
    alert) before anything loads or serves. Once admitted, later loads (a restart) check the digest,
    which names exactly the files whose signature verified here.
    """
    if (done := controller.reply(inc.id)) is not None:
        save_rollout(session, done.rollout)
        return done.events
    outcome = inc.message.outcome
    goal = latest_goal(session, outcome.goal_name)
    why = refusal(approval_of(outcome), goal.version if goal else None, goal.acceptance.declared() if goal else REQUIRED_CRITERIA)
    if why is not None or goal is None:
        log.warning("refused adapter %s for goal %s: %s", outcome.adapter.digest, outcome.goal_name, why)
        raise InvalidInput(f"adapter {outcome.adapter.digest} refused: {why}",
                           hint="only adapters whose evaluation passed every criterion are served")
    adapter = adapter_of(outcome, uuid7())
    plan, policy = machine.plan_of(goal), machine.policy_of(goal)
    # Refuse stale offers before any fetching; the same check runs again under the controller's lock.
    machine.offer(controller.rollouts_get(goal.name), adapter, plan, policy, controller.clock())
    # Verifies the digest and the trainer's artifact signature; raises before anything serves.
    controller.admit_adapter(adapter, outcome.adapter_signature, artifacts)
    applied = controller.transition(
        goal.name, lambda r: machine.offer(r, adapter, plan, policy, controller.clock()), reply_key=inc.id)
    assert applied is not None
    save_rollout(session, applied.rollout)
    return applied.events


def on_rollback_requested(inc: Incoming[ev.RollbackRequested], session: Session, *,
                          controller: Controller) -> list[Outgoing]:
    """Send the named canary (or freshly promoted champion) back to 0 % at once."""
    m = inc.message
    lag_ms = max(0.0, (time.time() - inc.time.timestamp()) * 1000.0)
    numbers = (*sorted(m.numbers.items()), ("event_to_decision_ms", lag_ms))
    reason = m.reason or f"rollback requested by {m.requested_by or inc.source}"
    applied = controller.transition(
        m.goal_name, lambda r: machine.rollback(r, m.adapter_digest, "rollback_requested", reason,
                                                controller.clock(), numbers, m.incident_id),
        reply_key=inc.id)
    assert applied is not None
    save_rollout(session, applied.rollout)
    return applied.events


def on_drift_detected(inc: Incoming[ev.DriftDetected], session: Session, *, controller: Controller) -> list[Outgoing]:
    """Drift on the candidate holds its current step (the monitor asks for a rollback itself)."""
    if controller.note_drift(inc.message.goal_name, inc.message.adapter_digest):
        log.info("goal %s: drift reported on %s; its step will not advance", inc.message.goal_name,
                 inc.message.adapter_digest)
    return []


def review_pending(controller: Controller, goal: str, digest: str, approved: bool, by: str, reason: str) -> Rollout:
    """A person's approval or rejection of the goal's waiting adapter (Admin gRPC): applied, persisted, announced."""
    applied = controller.apply_now(goal, lambda r: machine.review(r, digest, approved, by, reason, controller.clock()))
    assert applied is not None
    return applied.rollout


def hold_or_resume(controller: Controller, goal: str, digest: str, hold: bool, by: str, reason: str) -> Rollout:
    """A person's hold (or resume) of the goal's rollout in progress (Admin gRPC): applied, persisted, announced."""
    action = machine.hold if hold else machine.resume
    applied = controller.apply_now(goal, lambda r: action(r, digest, by, reason, controller.clock()))
    assert applied is not None
    return applied.rollout


def manual_rollback(controller: Controller, goal: str, reason: str) -> tuple[Rollout, machine.RolledBack, float]:
    """An operator's rollback (Admin gRPC): swap at once, then persist and emit; returns what happened."""
    applied = controller.apply_now(
        goal, lambda r: machine.rollback(r, "", "manual", reason or "manual rollback", controller.clock()))
    assert applied is not None
    back = next(d for d in applied.decisions if isinstance(d, machine.RolledBack))
    return applied.rollout, back, applied.decision_to_zero_ms or 0.0
