"""Ray Train on the real model with tiny data: same digest twice, SIGKILLed worker resumes (R13), failures."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from services.kernel.modeling import adapter_digest
from services.trainer.adapters import ray_training

pytestmark = pytest.mark.integration


def test_two_runs_of_the_same_config_give_the_same_adapter_digest(reference, tiny_config, tmp_path: Path) -> None:
    again = ray_training.fit(tiny_config(), "again", tmp_path, 2, 1, tmp_path / "adapter")
    assert again.status == "succeeded" and again.steps == reference.steps == 13
    assert again.adapter_dir is not None
    assert adapter_digest(again.adapter_dir) == adapter_digest(reference.adapter_dir)
    assert again.curve == reference.curve


def test_a_sigkilled_worker_resumes_from_the_last_checkpoint_to_the_same_digest(reference, tiny_config, ray_probe,
                                                                                 tmp_path: Path) -> None:
    checkpoints, ray_train_workers = ray_probe
    result: dict[str, ray_training.TrainOutcome] = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "out", ray_training.fit(tiny_config(), "killed", tmp_path, 2, 2, tmp_path / "adapter")))
    thread.start()
    deadline = time.monotonic() + 600
    while not checkpoints(tmp_path, "killed") and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert checkpoints(tmp_path, "killed"), "no checkpoint was written before the run ended"
    victim = ray_train_workers()[-1]
    victim.send_signal(signal.SIGKILL)
    thread.join(900)
    out = result["out"]
    assert out.status == "succeeded", out.reason
    assert out.stats["resumed_from_step"] >= 3  # it restored a checkpoint rather than starting over
    assert out.adapter_dir is not None
    assert adapter_digest(out.adapter_dir) == adapter_digest(reference.adapter_dir)
    assert out.curve == reference.curve


def test_a_worker_that_fails_every_attempt_fails_once_with_the_reason(ray_local, tiny_config, tmp_path: Path) -> None:
    out = ray_training.fit(tiny_config(base_model=str(tmp_path / "no-such-model")), "broken", tmp_path, 2, 1,
                           tmp_path / "adapter")
    assert out.status == "failed" and "neither bundled nor a local model folder" in out.reason
    assert "2 attempt(s)" in out.reason and out.adapter_dir is None and not (tmp_path / "adapter").exists()


def test_dp_sgd_on_two_ray_workers_repeats_and_reports_the_accountants_epsilon(ray_local, tiny_config, tmp_path: Path) -> None:
    """Opacus' distributed DP-SGD across Ray Train's workers: one global Poisson batch, noise added once."""
    from services.kernel.goal import PrivacySpec
    from services.trainer.domain import privacy

    plan = privacy.plan(PrivacySpec(epsilon=8.0, delta=1e-3), 200, 16, 4)
    runs = [ray_training.fit(tiny_config(privacy=plan, epochs=0.3), f"dp-{tag}", tmp_path, 2, 0, tmp_path / f"adapter-{tag}")
            for tag in "ab"]
    for out in runs:
        assert out.status == "succeeded", out.reason
        assert out.steps == 4 and out.curve == []
    a, b = runs
    assert a.adapter_dir is not None and b.adapter_dir is not None
    assert adapter_digest(a.adapter_dir) == adapter_digest(b.adapter_dir)
    m = a.metrics
    assert m["privacy_steps"] == 4 and m["privacy_sample_rate"] == pytest.approx(16 / 200)
    assert m["privacy_epsilon"] == pytest.approx(privacy.epsilon("rdp", plan.noise_multiplier, 16 / 200, 4, 1e-3), rel=1e-12)
