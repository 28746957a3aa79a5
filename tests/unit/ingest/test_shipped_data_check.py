"""The CI data check (scripts/ci/check_shipped_data.py) fails on a goal that would not apply and on a
dataset the ingest gates would reject, and passes a good pair: small synthetic data, the real ingest."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scripts.ci.check_shipped_data import check
from services.kernel.settings import REPO_ROOT


@pytest.fixture
def tree(tmp_path: Path, kit) -> tuple[Path, Path]:
    goals, mini = tmp_path / "goals", tmp_path / "datasets" / "mini"
    goals.mkdir()
    mini.mkdir(parents=True)
    goal = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    goal["data"]["dataset"] = "mini"
    (goals / "mini.yaml").write_text(yaml.safe_dump(goal))
    kit.write_csv(mini / "train.csv", kit.sentences(90))
    kit.write_csv(mini / "test.csv", kit.sentences(12, seed=6))
    return goals, tmp_path / "datasets"


def quiet(_line: str) -> None:
    pass


def test_a_good_goal_and_dataset_pass(tree) -> None:
    lines: list[str] = []
    goals, datasets = tree
    assert check(goals, datasets, report=lines.append) == []
    assert lines[0].startswith("ok   mini.yaml + mini/train.csv: registered:") and lines[1].startswith("ok   mini/test.csv (row gates)")


def test_a_goal_that_would_not_apply_fails(tree) -> None:
    goals, datasets = tree
    (goals / "typo.yaml").write_text((goals / "mini.yaml").read_text().replace("epochs:", "epochz:"))
    [problem] = check(goals, datasets, report=quiet)
    assert problem.startswith("typo.yaml does not apply") and "training.epochz: unknown key" in problem


def test_a_goal_on_a_dataset_that_is_not_shipped_fails(tree) -> None:
    goals, datasets = tree
    (goals / "other.yaml").write_text((goals / "mini.yaml").read_text().replace("dataset: mini", "dataset: nowhere"))
    assert check(goals, datasets, report=quiet)[0].startswith("other.yaml trains on 'nowhere', which is not shipped")


def test_a_dataset_the_gates_reject_fails(tree, kit) -> None:
    goals, datasets = tree
    kit.write_csv(datasets / "mini" / "train.csv", [*kit.sentences(90), ("only twice", "rare"), ("only twice again", "rare")])
    [problem] = check(goals, datasets, report=quiet)
    assert problem.startswith("mini.yaml + mini/train.csv: rejected: labels:")


def test_a_held_out_split_with_a_malformed_row_fails(tree, kit) -> None:
    goals, datasets = tree
    kit.write_csv(datasets / "mini" / "test.csv", [*kit.sentences(12, seed=6), ("no label", "")])
    [problem] = check(goals, datasets, report=quiet)
    assert problem.startswith("mini/test.csv (row gates): schema:")
