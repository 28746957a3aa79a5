"""The trainer's side of the Ray cluster test: connect the way the trainer does (RAY_ADDRESS, through its
settings), run the tiny config on two Ray Train workers, print the outcome as one JSON line.

Run from the repository root: python -m tests.integration.trainer.ray_cluster_driver STORAGE RUN OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from services.kernel.modeling import adapter_digest
from services.trainer import training
from services.trainer.adapters import ray_training
from services.trainer.settings import TrainerSettings
from tests.integration.trainer.tiny import tiny_config


def main() -> None:
    storage, run, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    options = training.ray_options(TrainerSettings())
    if not options.address:
        sys.exit("set RAY_ADDRESS to the cluster's head")
    torch.set_num_threads(1)
    ray_training.ensure_ray(options)
    outcome = ray_training.fit(tiny_config(), run, storage, 2, 2, out)
    print(json.dumps({"status": outcome.status, "reason": outcome.reason, "steps": outcome.steps,
                      "resumed_from_step": outcome.stats.get("resumed_from_step", 0), "curve": outcome.curve,
                      "digest": adapter_digest(outcome.adapter_dir) if outcome.adapter_dir else ""}))


if __name__ == "__main__":
    main()
