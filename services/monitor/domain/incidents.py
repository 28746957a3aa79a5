"""What the monitor does about drifted windows: persistence, one incident, rollback or escalation.

A drift incident opens when drift_windows consecutive windows drifted and stays open until a clean
window; while it is open nothing more is emitted, so repeated decisions are idempotent. An incident
asks for a rollback only when the adapter is a canary or was promoted within
recent_promotion_seconds, the goal allows it (policy.auto_rollback), and the goal's last rollback
request is older than cooldown_seconds; otherwise ops are alerted and a person decides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Role = Literal["canary", "champion", "retired", "unknown"]
Action = Literal["none", "rollback", "escalate"]


@dataclass(frozen=True)
class DriftState:
    """Per goal and adapter: consecutive drifted windows and the open incident, if any."""

    consecutive: int = 0
    incident_id: str = ""
    windows: int = 0


@dataclass(frozen=True)
class Deployment:
    """What the monitor learnt from deployment.* events about one adapter of a goal."""

    deployment_id: str
    adapter_digest: str
    role: Role
    promoted_at_ms: int = 0


@dataclass(frozen=True)
class RollbackPolicy:
    """The goal's rollback section and policy.auto_rollback, as the decision needs them."""

    drift_windows: int
    cooldown_seconds: float
    recent_promotion_seconds: float
    auto_rollback: bool


@dataclass(frozen=True)
class Decision:
    """The new state, whether an incident opened (drift.detected) and what to do about it."""

    state: DriftState
    opened: bool
    action: Action
    reason: str


def decide(
    state: DriftState, drifted: bool, policy: RollbackPolicy, deployment: Deployment | None,
    now_ms: int, last_rollback_ms: int, new_incident_id: str,
) -> Decision:
    """Decide after one window: nothing, a rollback request, or an escalation to a person."""
    if not drifted:
        return Decision(DriftState(0, "", state.windows + 1), False, "none", "window clean")
    state = DriftState(state.consecutive + 1, state.incident_id, state.windows + 1)
    if state.consecutive < policy.drift_windows:
        return Decision(state, False, "none", f"{state.consecutive} of {policy.drift_windows} drifted windows")
    if state.incident_id:
        return Decision(state, False, "none", f"incident {state.incident_id} already open")
    state = replace(state, incident_id=new_incident_id)
    action, reason = rollback_or_escalate(policy, deployment, now_ms, last_rollback_ms)
    return Decision(state, True, action, reason)


def rollback_or_escalate(
    policy: RollbackPolicy, deployment: Deployment | None, now_ms: int, last_rollback_ms: int, what: str = "drift"
) -> tuple[Action, str]:
    """Whether an incident (drift, an error-rate, latency or accuracy breach) on this adapter asks for a
    rollback, or a person decides: the same rule for every condition."""
    if deployment is None or deployment.role not in ("canary", "champion"):
        return "escalate", f"the adapter with {what} is not a known live deployment"
    recent = (now_ms - deployment.promoted_at_ms) <= policy.recent_promotion_seconds * 1000
    if deployment.role == "champion" and not recent:
        return "escalate", "the champion was promoted long ago: a person decides"
    if not policy.auto_rollback:
        return "escalate", "the goal's policy does not allow automatic rollback"
    if last_rollback_ms and now_ms - last_rollback_ms < policy.cooldown_seconds * 1000:
        return "escalate", "a rollback was requested within the cooldown"
    role = "canary" if deployment.role == "canary" else "recently promoted champion"
    return "rollback", f"{what} on the {role}"
