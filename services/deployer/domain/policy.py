"""Which approved-looking adapters the deployer may serve: only a fully passed evaluation, for the goal in force."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.kernel.ids import is_digest


@dataclass(frozen=True)
class Approval:
    """What an eval.passed event claims, reduced to what the deployer checks."""

    goal: str
    goal_version: str
    digest: str
    uri: str
    passed: bool
    criteria: tuple[tuple[str, bool], ...]   # (name, passed) per acceptance criterion


def refusal(approval: Approval, known_goal_version: str | None, required: Iterable[str]) -> str | None:
    """Why this adapter must not be served, or None when it may be (fail-closed)."""
    if not approval.passed:
        return "the evaluation did not pass"
    if not approval.criteria:
        return "the evaluation carries no criteria"
    failed = [name for name, ok in approval.criteria if not ok]
    if failed:
        return f"criteria not passed: {', '.join(sorted(failed))}"
    missing = set(required) - {name for name, _ in approval.criteria}
    if missing:
        return f"criteria missing: {', '.join(sorted(missing))}"
    if not is_digest(approval.digest) or not approval.uri:
        return f"adapter reference is not a sha256 digest with a URI: {approval.digest!r}"
    if known_goal_version is None:
        return f"no goal {approval.goal!r} has been applied"
    if known_goal_version != approval.goal_version:
        return (f"evaluated against goal version {approval.goal_version}, but the goal in force is "
                f"{known_goal_version}")
    return None
