"""DP-SGD steps for the training loop, with Opacus: per-sample gradients, clipping, noise, accounting.

The loop (training_loop.py) stays the same; with `training.privacy` set it hands each step to
`PrivateSteps` instead of the plain backward/clip/AdamW step:

- the model is wrapped in Opacus' `GradSampleModule` (per-sample gradients of every trainable
  tensor: the LoRA A/B matrices and the head, or every encoder tensor for full fine-tuning);
- the AdamW optimiser is wrapped in Opacus' `DPOptimizer`, which clips each row's gradient to
  `max_grad_norm`, adds Gaussian noise of std noise_multiplier x max_grad_norm from a generator
  seeded by (seed, step), and averages by the expected batch size;
- batches are Poisson samples (domain/privacy.py), and an Opacus accountant records every step.

Across Ray Train's data-parallel workers this is Opacus' distributed support, not per-worker
accounting: every worker draws the same global Poisson batch and keeps its strided shard, the model
is wrapped in Opacus' `DifferentiallyPrivateDistributedDataParallel` (parameters broadcast from rank
0) and the optimiser is Opacus' `DistributedDPOptimizer`: each worker clips its own rows, the noise is
added once (on rank 0) and the clipped sums are all-reduced. The update is exactly the one-process
DP-SGD update on the global batch, so one accountant with the global sampling rate (batch_size /
rows) and the step count gives the guarantee per row, whatever the world size. (Per-worker
accounting on disjoint shards would also be sound, at the per-shard epsilon, but every worker would
add its own noise: world_size times the noise variance for the same epsilon.)

Full fine-tuning under DP trains every encoder tensor except the embedding tables (`freeze_embeddings`):
Hugging Face encoders share one row of position ids across the batch, which leaves the position table
without per-row gradients, and per-row copies of the word table (vocab x hidden per row) would not fit.

What the guarantee covers: the adapter (and anything computed from it afterwards, like the eval
report). The training curve's loss and gradient norms are computed on the private rows, so a DP run
publishes no curve; the loop's health check still stops a diverging run.
"""

from __future__ import annotations

from typing import Any

import torch

from services.trainer.domain import privacy
from services.trainer.domain.privacy import PrivacyPlan


def freeze_embeddings(model: torch.nn.Module) -> None:
    """Freeze the encoder's embedding tables (DP full fine-tuning; LoRA never trains them)."""
    for name, p in model.named_parameters():
        if ".embeddings." in f".{name}":
            p.requires_grad_(False)


class PrivateSteps:
    """One run's DP-SGD: the wrapped module to call, and the private optimiser step."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: PrivacyPlan, seed: int,
                 rank: int, world_size: int, resumed_steps: int) -> None:
        from opacus import GradSampleModule  # type: ignore[import-untyped]  # opacus ships no type information
        from opacus.distributed import DifferentiallyPrivateDistributedDataParallel  # type: ignore[import-untyped]  # opacus ships no type information
        from opacus.optimizers import DistributedDPOptimizer, DPOptimizer  # type: ignore[import-untyped]  # opacus ships no type information

        self.plan, self.seed, self.rank, self.world_size = plan, seed, rank, world_size
        wrapped = model if world_size == 1 else DifferentiallyPrivateDistributedDataParallel(model)
        # Opacus' module and optimiser are untyped: Any at this one boundary.
        self.net: Any = GradSampleModule(wrapped, batch_first=True, loss_reduction="mean")
        kind = DPOptimizer if world_size == 1 else DistributedDPOptimizer
        # Each worker averages by its share of the expected batch; DistributedDPOptimizer then averages
        # over the workers: the sum of clipped gradients plus the noise, over the global expected batch.
        self.optimizer: Any = kind(optimizer, noise_multiplier=plan.noise_multiplier, max_grad_norm=plan.max_grad_norm,
                                   expected_batch_size=plan.expected_batch_size / world_size, loss_reduction="mean")
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.accountant = privacy.make_accountant(plan.accountant)
        if resumed_steps:
            self.accountant.history = [(plan.noise_multiplier, plan.sample_rate, resumed_steps)]

    def rows(self, step: int, rows: int, lengths: list[int]) -> list[int]:
        """This worker's rows of the step's global Poisson batch (sorted by length, then strided)."""
        batch = privacy.poisson_batch(rows, self.plan.sample_rate, self.seed, step)
        batch.sort(key=lambda i: (lengths[i], i))
        return batch[self.rank::self.world_size]

    def per_sample_norm(self, rows: int) -> torch.Tensor:
        """The mean per-row gradient norm before clipping (0 for an empty shard).

        Tensors the forward pass never reached (the encoder's unused pooler) get zero per-row
        gradients, so the optimiser sees one per trainable tensor.
        """
        # Opacus keeps per-row gradients in an attribute it adds to each Parameter (`grad_sample`).
        samples: list[torch.Tensor] = []
        for p in self.params:
            if getattr(p, "grad_sample", None) is None:
                p.grad_sample = torch.zeros((rows, *p.shape), dtype=p.dtype, device=p.device)  # type: ignore[attr-defined]  # Opacus' attribute
            samples.append(p.grad_sample)  # type: ignore[attr-defined]  # Opacus' attribute
        if rows == 0:
            return torch.zeros((), device=self.params[0].device)
        norms: torch.Tensor = torch.stack([g.reshape(rows, -1).norm(2, dim=1) for g in samples], dim=1).norm(2, dim=1)
        return norms.mean().detach()

    def step(self, step: int) -> None:
        """Clip, add the step's seeded noise, update, and account for the step."""
        generator = torch.Generator(device=self.params[0].device)
        generator.manual_seed(privacy.noise_seed(self.seed, step))
        self.optimizer.generator = generator
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.accountant.step(noise_multiplier=self.plan.noise_multiplier, sample_rate=self.plan.sample_rate)

    def spent(self) -> float:
        """The accountant's epsilon at the plan's delta for the steps taken so far."""
        if not self.accountant.history:
            return 0.0
        return float(self.accountant.get_epsilon(delta=self.plan.delta))

    def close(self) -> None:
        """Remove Opacus' hooks: the model is evaluated and saved as a plain module."""
        self.net.disable_hooks()
