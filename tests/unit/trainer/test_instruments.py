"""The trainer's metrics from a finished run's outcome (what Ray's workers report at the end)."""

from types import SimpleNamespace

from services.trainer import instruments
from services.trainer.adapters.ray_training import TrainOutcome
from tests.support import local_metrics, metric_total


def test_a_resumed_run_counts_the_steps_and_tokens_it_trained_and_its_checkpoints():
    local_metrics()
    before = local_metrics()
    outcome = TrainOutcome("succeeded", "", None, curve=[{"step": 90, "epoch": 1.0, "loss": 0.9, "learning_rate": 1e-4,
                                                          "grad_norm": 1.0},
                                                         {"step": 100, "epoch": 1.1, "loss": 0.42, "learning_rate": 1e-4,
                                                          "grad_norm": 1.0}],
                           stats={"resumed_from_step": 40.0, "real_tokens": 1000.0, "checkpoints": 2.0,
                                  "checkpoint_seconds": 3.0}, steps=100)
    done = SimpleNamespace(outcome=outcome, prepared=SimpleNamespace(workers=2), wall_seconds=10.0)
    instruments.run_state("g-metrics", "started")
    instruments.run_trained("g-metrics", done)  # type: ignore[arg-type]
    instruments.run_state("g-metrics", "finished")
    after = local_metrics()

    def delta(name, **labels):
        return metric_total(after, name, goal="g-metrics", **labels) - metric_total(before, name, goal="g-metrics", **labels)

    assert delta("tuneline_training_steps_total") == 60, "100 steps, 40 of them restored from a checkpoint"
    assert delta("tuneline_training_tokens_total") == 2000, "rank 0's 1,000 tokens on each of 2 workers"
    assert delta("tuneline_training_checkpoint_duration_seconds_count") == 2
    assert delta("tuneline_training_checkpoint_duration_seconds_sum") == 3.0
    assert delta("tuneline_training_runs_total", state="started") == 1 == delta("tuneline_training_runs_total", state="finished")
    assert metric_total(after, "tuneline_training_loss", goal="g-metrics") == 0.42, "the last logged step's loss"
