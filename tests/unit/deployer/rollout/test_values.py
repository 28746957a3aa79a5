"""The rollout values refuse a change they would refuse at construction: unknown keys, wrong types."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.deployer.domain.rollout import Adapter, Plan, Rollout, StepStats


def adapter() -> Adapter:
    return Adapter(digest="sha256:" + "1" * 64, uri="/a/1", deployment_id="dep-1", goal_version="sha256:g")


def test_replace_changes_the_named_fields_only() -> None:
    r = Rollout(goal="g", state="canary", champion=adapter(), plan=Plan(steps=(20, 100)))
    moved = r.replace(step_index=1, step_started_at=5.0)
    assert (moved.step_index, moved.step_started_at) == (1, 5.0) and (r.step_index, r.step_started_at) == (0, 0.0)
    assert moved.champion is r.champion and moved.plan is r.plan     # nested values kept as they are
    assert moved == Rollout.model_validate_json(moved.model_dump_json())


@pytest.mark.parametrize("change", [{"step_idx": 1}, {"champoin": None}])
def test_replace_refuses_a_misspelt_key(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Rollout(goal="g").replace(**change)


@pytest.mark.parametrize("value, change", [
    (Rollout(goal="g"), {"state": "canery"}),
    (Rollout(goal="g"), {"champion": "sha256:abc"}),
    (Rollout(goal="g"), {"step_index": "first"}),
    (StepStats(), {"requests": None}),
    (StepStats(), {"drift": "maybe"}),
])
def test_replace_refuses_a_wrong_type(value: Rollout | StepStats, change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        value.replace(**change)
