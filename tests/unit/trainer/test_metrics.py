"""The trainer's metrics as its process records them: the training job counts a run's states and, from the
outcome the driver reads at the end of a run, its steps, tokens, checkpoint times and last loss. Here the
real loop runs in this process and its final checkpoint is read the way Ray's driver reads it."""

import threading
from types import SimpleNamespace

import pytest

from services.kernel.blobs import BlobStore
from services.kernel.errors import PermanentError
from services.kernel.jobs import JobContext
from services.trainer import training
from services.trainer.adapters import ray_training
from services.trainer.adapters.training_loop import train
from services.trainer.settings import TrainerSettings
from services.trainer.training_job import TrainingJob
from tests.support import local_metrics, metric_total
from tests.unit.trainer.test_training_job import GOAL, _queued


@pytest.fixture
def job_on_the_loop(tmp_path, monkeypatch, loop_config, local_session):
    """A queued training job whose fit runs the real loop here; returns (TrainingJob, Job, the outcomes fit read)."""
    settings = TrainerSettings(state_dir=tmp_path / "state")
    store, job = _queued(settings, 1)
    outcomes: list[ray_training.TrainOutcome] = []

    def run(**changes):
        cfg = loop_config(**changes)
        prepared = SimpleNamespace(goal=GOAL, workers=1, cfg=cfg,
                                   envelope=SimpleNamespace(to_json=lambda: b"{}", digest="sha256:" + "4" * 64))

        def fit(_settings, prep, _run, out_dir):
            train(cfg, local_session(), tmp_path / "work")
            outcomes.append(ray_training._read_final(tmp_path / "work" / "final", out_dir))
            return SimpleNamespace(prepared=prep, outcome=outcomes[-1], wall_seconds=1.0)

        monkeypatch.setattr(training, "prepare", lambda *_a: prepared)
        monkeypatch.setattr(training, "fit", fit)
        return TrainingJob(settings, store, BlobStore.from_settings(settings)), job, outcomes
    return run


def _delta(before, after, name, **labels):
    return metric_total(after, name, goal=GOAL.name, **labels) - metric_total(before, name, goal=GOAL.name, **labels)


def test_a_finished_run_counts_its_states_steps_tokens_checkpoints_and_last_loss(job_on_the_loop):
    trainer, job, outcomes = job_on_the_loop(checkpoint_every=2)
    local_metrics()
    before = local_metrics()
    trainer.execute(job, JobContext(trainer.store, job, threading.Event()))
    after = local_metrics()
    [outcome] = outcomes
    assert outcome.status == "succeeded" and outcome.steps == 6
    assert _delta(before, after, "tuneline_training_runs_total", state="started") == 1
    assert _delta(before, after, "tuneline_training_runs_total", state="finished") == 1
    assert _delta(before, after, "tuneline_training_runs_total", state="failed") == 0
    assert _delta(before, after, "tuneline_training_steps_total") == 6
    assert _delta(before, after, "tuneline_training_tokens_total") == outcome.stats["real_tokens"] > 0
    assert _delta(before, after, "tuneline_training_checkpoint_duration_seconds_count") == 2, "steps 2 and 4 (6 is the end)"
    assert _delta(before, after, "tuneline_training_checkpoint_duration_seconds_sum") == pytest.approx(
        outcome.stats["checkpoint_seconds"])
    assert metric_total(after, "tuneline_training_loss", goal=GOAL.name) == pytest.approx(outcome.curve[-1]["loss"])


def test_a_diverged_run_counts_as_started_and_failed(job_on_the_loop):
    trainer, job, outcomes = job_on_the_loop(explode_grad_norm=1e-9)
    local_metrics()
    before = local_metrics()
    with pytest.raises(PermanentError, match="exploding gradient norm") as raised:
        trainer.execute(job, JobContext(trainer.store, job, threading.Event()))
    trainer.on_failure(job, raised.value)  # what the job runner does with a permanent error
    after = local_metrics()
    assert outcomes[0].status == "failed"
    assert _delta(before, after, "tuneline_training_runs_total", state="started") == 1
    assert _delta(before, after, "tuneline_training_runs_total", state="failed") == 1
    assert _delta(before, after, "tuneline_training_runs_total", state="finished") == 0
    assert _delta(before, after, "tuneline_training_steps_total") == 0, "it stopped before its first step"
