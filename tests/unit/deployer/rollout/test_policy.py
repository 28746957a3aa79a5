"""Only a fully passed evaluation for the goal in force may be served."""

from __future__ import annotations

from dataclasses import replace

from services.deployer.domain.policy import Approval, refusal

GOOD = Approval(goal="g", goal_version="sha256:v1", digest="sha256:" + "a" * 64, uri="/x", passed=True,
                criteria=(("accuracy", True), ("ece", True)))
REQ = ("accuracy", "ece")


def test_good_approval_accepted() -> None:
    assert refusal(GOOD, "sha256:v1", REQ) is None


def test_refusals_name_the_reason() -> None:
    cases = {
        "did not pass": replace(GOOD, passed=False),
        "no criteria": replace(GOOD, criteria=()),
        "not passed: ece": replace(GOOD, criteria=(("accuracy", True), ("ece", False))),
        "missing: ece": replace(GOOD, criteria=(("accuracy", True),)),
        "sha256 digest": replace(GOOD, digest="md5:abc"),
    }
    for why, approval in cases.items():
        assert why in (refusal(approval, "sha256:v1", REQ) or ""), why
    assert "no goal" in (refusal(GOOD, None, REQ) or "")
    assert "goal in force" in (refusal(GOOD, "sha256:v2", REQ) or "")
