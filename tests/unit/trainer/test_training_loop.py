"""The training loop on the tiny BERT in one process: deterministic, resumable, stops when it diverges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest

from services.kernel.modeling import adapter_digest
from services.trainer.adapters.training_loop import ADAPTER_DIR, OUTCOME_FILE, train

Method = Literal["lora", "full"]


@pytest.fixture
def run_loop(loop_config, local_session):
    """Train in this process; returns (outcome.json, the session with its reports)."""
    def run(workdir: Path, resume: Path | None = None, **changes):
        session = local_session(resume)
        train(loop_config(**changes), session, workdir)
        return json.loads((workdir / "final" / OUTCOME_FILE).read_text()), session
    return run


@pytest.mark.parametrize("method", ["lora", "full"])
def test_two_runs_give_the_same_adapter_digest(run_loop, tmp_path: Path, method: Method) -> None:
    from services.kernel.goal import ApproachSpec

    a, _ = run_loop(tmp_path / "a", approach=ApproachSpec(method=method, r=4))
    b, _ = run_loop(tmp_path / "b", approach=ApproachSpec(method=method, r=4))
    assert a["status"] == "succeeded" and a["steps"] == 6
    assert adapter_digest(tmp_path / "a" / "final" / ADAPTER_DIR) == adapter_digest(tmp_path / "b" / "final" / ADAPTER_DIR)
    c, _ = run_loop(tmp_path / "c", seed=8, approach=ApproachSpec(method=method, r=4))
    assert adapter_digest(tmp_path / "c" / "final" / ADAPTER_DIR) != adapter_digest(tmp_path / "a" / "final" / ADAPTER_DIR)


def test_resuming_from_a_checkpoint_ends_with_the_same_digest(run_loop, tmp_path: Path) -> None:
    full, session = run_loop(tmp_path / "full")
    checkpoints = [d for _, d in session.reports if d is not None and d.name.startswith("step-")]
    assert [d.name for d in checkpoints] == ["step-00000002", "step-00000004"]
    resumed, _ = run_loop(tmp_path / "resumed", resume=checkpoints[0])
    assert resumed["curve"] == full["curve"]
    assert adapter_digest(tmp_path / "resumed" / "final" / ADAPTER_DIR) == adapter_digest(tmp_path / "full" / "final" / ADAPTER_DIR)


def test_non_finite_loss_stops_the_run_without_an_adapter(run_loop, tmp_path: Path) -> None:
    outcome, _ = run_loop(tmp_path / "nan", learning_rate=1e30, max_grad_norm=1e30, explode_grad_norm=1e300)
    assert outcome["status"] == "failed" and "non-finite loss" in outcome["reason"]
    assert not (tmp_path / "nan" / "final" / ADAPTER_DIR).exists()


def test_exploding_gradient_norm_stops_the_run(run_loop, tmp_path: Path) -> None:
    outcome, _ = run_loop(tmp_path / "boom", explode_grad_norm=1e-9)
    assert outcome["status"] == "failed" and "exploding gradient norm" in outcome["reason"]
    assert not (tmp_path / "boom" / "final" / ADAPTER_DIR).exists()
