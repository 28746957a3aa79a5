"""The trainer's settings (env prefix TUNELINE_; RAY_ADDRESS is honoured for a Ray cluster)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from services.kernel.settings import Settings


class TrainerSettings(Settings):
    """Where Ray runs and the trainer's safety limits."""

    # Empty: a local Ray instance started by the trainer; "auto" or ray://host:port: a cluster.
    ray_address: str = Field(default="", validation_alias=AliasChoices("TUNELINE_RAY_ADDRESS", "RAY_ADDRESS"))
    ray_num_cpus: int = Field(2, ge=1)
    ray_object_store_mb: int = Field(100, ge=80)
    # Threads per training worker; 0 = the Ray CPUs divided among the workers.
    train_threads: int = Field(0, ge=0)
    # A pre-clipping gradient norm above this means the run diverged: stop instead of writing an adapter.
    explode_grad_norm: float = Field(1.0e4, gt=0)
    # Training-job attempts (service-level; Ray's FailureConfig retries worker failures inside one).
    job_max_attempts: int = Field(2, ge=1)
    # Overrides the git commit in the reproducibility envelope (e.g. set by a container build).
    code_version: str = ""

    def threads_per_worker(self, workers: int) -> int:
        """Torch threads for each training worker."""
        return self.train_threads or max(1, self.ray_num_cpus // workers)
