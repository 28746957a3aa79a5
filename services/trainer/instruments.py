"""The trainer's instruments (docs/metrics.md): runs by state, steps, tokens, loss and checkpoint time, by goal.

Training runs in Ray workers, which report to the trainer only when a run ends (the outcome carries
rank 0's counters); the trainer process, whose /metrics is scraped, records them then. Steps and tokens
are those trained by this attempt (a resumed run counts from its checkpoint); tokens are rank 0's real
(unpadded) tokens times the world size, the shards being equal-sized.
"""

from __future__ import annotations

import threading

from services.kernel.metrics import Attributes, GaugeSet, meter
from services.trainer.training import FinishedRun

RUNS = meter().create_counter("tuneline.training.runs", unit="{run}", description="Training runs by goal and state")
STEPS = meter().create_counter("tuneline.training.steps", unit="{step}", description="Optimiser steps trained, by goal")
TOKENS = meter().create_counter("tuneline.training.tokens", unit="{token}", description="Real (unpadded) tokens trained, by goal")
CHECKPOINT = meter().create_histogram("tuneline.training.checkpoint.duration", unit="s",
                                      description="Time to write one checkpoint (the mean of a run's, once per checkpoint)")
_losses: dict[str, float] = {}
_lock = threading.Lock()


def _last_losses() -> list[tuple[float, Attributes]]:
    with _lock:
        return [(loss, {"goal": goal}) for goal, loss in _losses.items()]


LOSS = GaugeSet("tuneline.training.loss", "1", "Training loss at the last logged step of the goal's latest run")
LOSS.add(_last_losses)


def run_state(goal: str, state: str) -> None:
    """A run started, finished or failed."""
    RUNS.add(1, {"goal": goal, "state": state})


def run_trained(goal: str, done: FinishedRun) -> None:
    """Record what a finished run's workers did."""
    out, attrs = done.outcome, {"goal": goal}
    stats = out.stats
    STEPS.add(max(0, out.steps - int(stats.get("resumed_from_step", 0))), attrs)
    TOKENS.add(int(stats.get("real_tokens", 0.0)) * done.prepared.workers, attrs)
    checkpoints = int(stats.get("checkpoints", 0))
    for _ in range(checkpoints):
        CHECKPOINT.record(stats.get("checkpoint_seconds", 0.0) / checkpoints, attrs)
    if out.curve:
        with _lock:
            _losses[goal] = float(out.curve[-1]["loss"])
