"""The reproducibility envelope: everything needed to re-run a training and expect the same bytes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from services.kernel.ids import canonical_json, digest_json


@dataclass(frozen=True)
class Hardware:
    """Where the run trained; the digest of an adapter is only promised to repeat on the same kind."""

    device: str              # cpu | cuda:<name>
    cpu: str
    threads_per_worker: int
    torch: str
    ray: str
    transformers: str
    peft: str
    python: str


@dataclass(frozen=True)
class Envelope:
    """Code, dependencies, data, goal, seeds and topology of one training run."""

    code_version: str          # git commit (+ "-dirty"), or the package version when not a checkout
    dependency_lock: str       # sha256 of requirements.lock
    goal_name: str
    goal_version: str
    goal_json: str
    dataset_name: str
    dataset_version: str
    train_digest: str
    eval_digest: str
    train_uri: str
    eval_uri: str
    seeds: dict[str, int]
    world_size: int
    use_gpu: bool
    hardware: Hardware
    labels: list[str] = field(default_factory=list)
    text_field: str = "text"
    label_field: str = "label"
    # DP-SGD's plan (services.trainer.domain.privacy.PrivacyPlan: epsilon budget, delta, noise
    # multiplier, sampling rate, steps, accountant); absent from the JSON when the run is not private.
    privacy: dict[str, Any] | None = None

    def _as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["privacy"] is None:
            del data["privacy"]  # envelopes of ordinary runs keep the bytes and digest they always had
        return data

    def to_json(self) -> bytes:
        """The envelope's canonical JSON bytes (what is stored and digested)."""
        return canonical_json(self._as_dict())

    @property
    def digest(self) -> str:
        """`sha256:` of the canonical JSON."""
        return digest_json(self._as_dict())


def envelope_from_json(data: dict[str, Any]) -> Envelope:
    """Rebuild an envelope from its stored JSON."""
    values = dict(data)
    values["hardware"] = Hardware(**values["hardware"])
    return Envelope(**values)
