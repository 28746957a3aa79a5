"""Run comparison (services.monitor.domain.compare): envelope sections, deltas, the paired test against
scipy's exact binomial test, and the refusal to pair runs evaluated on different rows."""

from __future__ import annotations

import json
import math

from scipy.stats import binomtest

from services.monitor.domain.compare import compare, envelope_changes

GOAL_A: dict[str, object] = {"name": "banking77", "training": {"epochs": 3, "learning_rate": 0.0002}}
GOAL_B: dict[str, object] = {"name": "banking77", "training": {"epochs": 1, "learning_rate": 0.0002}}


def _envelope(goal: dict[str, object], version: str, torch: str) -> dict[str, object]:
    return {"code_version": "abc123", "dependency_lock": "sha256:lock", "goal_json": json.dumps(goal), "dataset_version": version,
            "seeds": {"train": 17}, "hardware": {"device": "cpu", "torch": torch}, "labels": ["a", "b"]}


def _report(predicted: list[str], truth: list[str], digest: str = "sha256:eval") -> dict[str, object]:
    return {"identity": {"eval_data_digest": digest},
            "findings": {"metrics": {"per_label": [{"label": "a", "f1": 0.5}, {"label": "b", "f1": 0.75}]},
                         "slices": {"slices": [{"name": "short", "accuracy": 0.5}]}, "predicted": predicted, "truth": truth}}


def test_the_envelope_diff_names_each_changed_field_in_its_section() -> None:
    changes = envelope_changes(_envelope(GOAL_A, "sha256:1", "2.9"), _envelope(GOAL_B, "sha256:2", "2.10"))
    assert [(c.section, c.path, c.a, c.b) for c in changes] == [
        ("data", "data.dataset_version", "sha256:1", "sha256:2"),
        ("config", "config.goal.training.epochs", "3", "1"),
        ("environment", "environment.hardware.torch", "2.9", "2.10")]
    assert envelope_changes(_envelope(GOAL_A, "v", "t"), _envelope(GOAL_A, "v", "t")) == []


def test_the_paired_test_is_mcnemars_exact_test_on_the_discordant_rows() -> None:
    truth = ["a"] * 30 + ["b"] * 30
    pred_a = ["a"] * 20 + ["b"] * 10 + ["b"] * 25 + ["a"] * 5      # 45 right
    pred_b = ["a"] * 28 + ["b"] * 2 + ["b"] * 24 + ["a"] * 6       # 52 right
    outcome_a = {"metrics": {"accuracy": 0.75}, "criteria": [{"name": "accuracy", "value": 0.75, "threshold": 0.8,
                                                             "comparator": "min", "passed": False}]}
    outcome_b = {"metrics": {"accuracy": 52 / 60}, "criteria": [{"name": "accuracy", "value": 52 / 60, "threshold": 0.8,
                                                                "comparator": "min", "passed": True}]}
    c = compare(_envelope(GOAL_A, "v", "t"), _envelope(GOAL_B, "v", "t"), outcome_a, outcome_b,
                _report(pred_a, truth), _report(pred_b, truth), max_examples=3)
    only_a = sum(x == t != y for x, y, t in zip(pred_a, pred_b, truth, strict=True))
    only_b = sum(y == t != x for x, y, t in zip(pred_a, pred_b, truth, strict=True))
    assert (c.paired.only_a, c.paired.only_b) == (only_a, only_b) == (1, 8)
    assert math.isclose(c.paired.p_value, binomtest(1, 9, 0.5).pvalue)
    assert (c.paired.accuracy_a, c.paired.accuracy_b) == (45 / 60, 52 / 60)
    assert c.changed_total == sum(x != y for x, y in zip(pred_a, pred_b, strict=True)) and len(c.changed) == 3
    assert [(x.row, x.truth, x.a, x.b) for x in c.changed][0] == (20, "a", "b", "a")
    [crit] = c.criteria
    assert (crit.a_passed, crit.b_passed) == (False, True) and math.isclose(crit.b - crit.a, 52 / 60 - 0.75)
    assert [d.name for d in c.labels] == ["a", "b"] and c.slices[0].delta == 0.0


def test_runs_evaluated_on_different_rows_are_not_paired() -> None:
    env = _envelope(GOAL_A, "v", "t")
    other_rows = compare(env, env, {}, {}, _report(["a"], ["a"]), _report(["a"], ["a"], digest="sha256:other"))
    assert not other_rows.paired.paired and "different rows" in other_rows.paired.reason and other_rows.changed == []
    old_report = compare(env, env, {}, {}, _report([], []), _report(["a"], ["a"]))
    assert not old_report.paired.paired and "no per-row predictions" in old_report.paired.reason
    no_report = compare(env, env, {}, {}, None, _report(["a"], ["a"]))
    assert not no_report.paired.paired and no_report.labels == []
