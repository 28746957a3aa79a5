"""Serving knobs; DeployerSettings embeds this model as `serving` (env TUNELINE_SERVING__MAX_BATCH_SIZE=...)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MIB = 1 << 20


class ServingConfig(BaseModel):
    """Micro-batching, admission, input limits and inference-log settings of the gRPC server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Micro-batching: a batch closes at max_batch_size, or after max_wait_ms once other requests are
    # in flight (a lone request never waits: at concurrency 1 batching would only add latency).
    max_batch_size: int = Field(16, ge=1, le=1024)
    max_wait_ms: float = Field(2.0, ge=0.0, le=1000.0)
    # Admission: requests queued for the model beyond this get RESOURCE_EXHAUSTED instead of piling up.
    queue_capacity: int = Field(256, ge=1)
    inference_workers: int = Field(1, ge=1, le=64)
    grpc_threads: int = Field(32, ge=1, le=1024)
    # gRPC itself refuses concurrent RPCs beyond this with RESOURCE_EXHAUSTED (a flood never reaches us).
    max_concurrent_rpcs: int = Field(512, ge=1)
    max_message_bytes: int = Field(4 * MIB, ge=1024)
    # Input limits: 2000 characters is ~40x banking77's p95; bytes bound the 4-byte-per-char worst case.
    max_text_chars: int = Field(2000, ge=1)
    max_text_bytes: int = Field(8192, ge=1)
    max_batch_items: int = Field(64, ge=1)
    max_top_k: int = Field(20, ge=1)
    # Zero-width and bidi format characters: "reject" (INVALID_ARGUMENT) or "strip" them before the model.
    invisible_chars: Literal["reject", "strip"] = "reject"
    device: str = "auto"  # "auto" picks CUDA when present
    # torch threads per inference worker on CPU (0: torch's default, one per core). One is the default:
    # a second thread buys ~30 % at batch 2 on an idle 2-core machine, but its spinning barrier loses
    # to the server's own log producer and to neighbours (measured: p50 61 ms vs 29 ms with Kafka
    # logging on, concurrency 2; README, serving).
    torch_threads: int = Field(1, ge=0, le=256)
    # Inference log: records buffered for Kafka; beyond this they are counted as unlogged, never blocking.
    log_enabled: bool = True
    log_queue_capacity: int = Field(100_000, ge=1)
    log_linger_ms: int = Field(20, ge=0)
    log_delivery_timeout_ms: int = Field(30_000, ge=1000)
    # On SIGTERM: health goes NOT_SERVING, new calls are refused, in-flight calls get this long to finish.
    drain_grace_s: float = Field(10.0, ge=0.0)
    # Goal.policy.log_text may put request text in inference.logged; this switch can veto it server-wide.
    allow_text_logging: bool = True
