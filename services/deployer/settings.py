"""The deployer's settings: the shared ones plus the served base model and the serving knobs."""

from __future__ import annotations

from pydantic import Field

from services.deployer.serving.config import ServingConfig
from services.kernel.settings import Settings


class DeployerSettings(Settings):
    """Settings of `tuneline deployer run` (env prefix TUNELINE_, nested TUNELINE_SERVING__...)."""

    # One base model per deployer process; every served adapter must have been trained on it.
    base_model: str = "bundled:all-MiniLM-L6-v2"
    serving: ServingConfig = Field(default_factory=ServingConfig)
    # How long `tuneline deployments` / `predict` wait for the deployer's gRPC answer.
    client_timeout_s: float = Field(10.0, gt=0)
