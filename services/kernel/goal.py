"""The goal: a fine-tuning sprint goal as code (DESIGN.md), validated strictly.

Unknown keys and bad values are errors that name the key. A goal's version is the sha256 of its
canonical JSON, so the same goal always has the same version wherever it is applied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SerializerFunctionWrapHandler, ValidationError, field_validator, model_serializer, model_validator

from services.kernel.errors import ConfigError
from services.kernel.ids import canonical_json, digest_json
from services.kernel.values import Value

# A goal belongs to one tenant: its predictions, rollouts and lineage are open only to credentials of
# that tenant (services.kernel.credentials).
DEFAULT_TENANT = "default"
TENANT_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class _Strict(Value):
    """Every goal section: unknown keys refused, frozen, copied only through the validated `replace`."""


class _OptionalSection(_Strict):
    """A section whose optional keys (`_OMIT_WHEN_UNSET`) leave the canonical JSON when unset.

    So a goal that does not use an option added later keeps the version it always had.
    """

    _OMIT_WHEN_UNSET: tuple[str, ...] = ()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in self._OMIT_WHEN_UNSET:
            if data.get(key) is None:
                data.pop(key, None)
        return data


class TaskSpec(_Strict):
    kind: Literal["text-classification"] = "text-classification"
    text_field: str = "text"
    label_field: str = "label"
    slice_field: str | None = None


class DataSpec(_OptionalSection):
    _OMIT_WHEN_UNSET = ("slice_values",)

    dataset: str
    eval_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    seed: int = 17
    pii: Literal["scrub", "reject"] = "scrub"
    min_examples_per_label: int = Field(5, ge=1)
    # Train on this fraction of the registered train split (the demo's --quick and weak candidates).
    train_fraction: float = Field(1.0, gt=0.0, le=1.0)
    # Minimisation of the slice column: keep the values, hash them (keyed pseudonyms: per-slice
    # evaluation still works) or drop them. Unset is keep. Every other column is always left behind.
    slice_values: Literal["keep", "hash", "drop"] | None = None


class ApproachSpec(_Strict):
    method: Literal["lora", "full"] = "lora"
    r: int = Field(8, ge=1, le=256)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = ["query", "value"]


class PrivacySpec(_Strict):
    """DP-SGD (Opacus): per-sample clipping to `max_grad_norm`, Gaussian noise, Poisson sampling.

    `epsilon` is the budget: with no `noise_multiplier` the noise is calibrated so the planned steps
    spend exactly it; with one, training stops at the step that would exceed it.
    """

    epsilon: float = Field(gt=0, le=100)
    delta: float = Field(1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    noise_multiplier: float | None = Field(None, gt=0)
    accountant: Literal["rdp", "prv"] = "rdp"

    @field_validator("delta")
    @classmethod
    def _small_delta(cls, v: float) -> float:
        if v > 0.01:
            raise ValueError(f"delta {v:g} is not a meaningful privacy guarantee: choose delta < 1/(train rows), e.g. 1e-5")
        return v


class TrainingSpec(_OptionalSection):
    _OMIT_WHEN_UNSET = ("privacy",)

    epochs: float = Field(3, gt=0)
    learning_rate: float = Field(2.0e-3, gt=0, lt=1)
    batch_size: int = Field(32, ge=1, le=4096)
    max_length: int = Field(64, ge=8, le=512)
    seed: int = 17
    workers: int = Field(2, ge=1, le=256)
    use_gpu: bool | Literal["auto"] = "auto"
    warmup_fraction: float = Field(0.06, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0)
    checkpoint_every_steps: int = Field(100, ge=1)
    max_failures: int = Field(2, ge=0)
    # Differentially private training (DP-SGD); None: ordinary training.
    privacy: PrivacySpec | None = None


class MinCriterion(_Strict):
    min: float


class MaxCriterion(_Strict):
    max: float


class ChampionCriterion(_Strict):
    min_delta: float = 0.0
    significance: float = Field(0.05, gt=0.0, lt=1.0)


class AcceptanceSpec(_OptionalSection):
    """Every required criterion must be present and pass (fail-closed); an optional one set must pass too."""

    _OMIT_WHEN_UNSET = ("privacy_epsilon", "escalation_rate", "answered_accuracy")

    accuracy: MinCriterion
    macro_f1: MinCriterion
    ece: MaxCriterion
    robustness_drop: MaxCriterion
    slice_gap: MaxCriterion
    latency_p95_ms: MaxCriterion
    vs_champion: ChampionCriterion
    # Optional: the run's DP-SGD epsilon must be at most this (a run trained without DP fails it).
    privacy_epsilon: MaxCriterion | None = None
    # Optional, the goal's policy on the eval split: the share of predictions it would hand to a person
    # (confidence below policy.escalate_below_confidence) at most this, and the accuracy of those it lets
    # act on their own at least this. Together they keep a model that escalates everything from passing.
    escalation_rate: MaxCriterion | None = None
    answered_accuracy: MinCriterion | None = None

    def declared(self) -> tuple[str, ...]:
        """The criteria this goal judges: every required one, and each optional one it sets."""
        return tuple(name for name in type(self).model_fields if getattr(self, name) is not None)


# The criteria every goal must declare (AcceptanceSpec's fields without a default).
REQUIRED_CRITERIA = tuple(name for name, f in AcceptanceSpec.model_fields.items() if f.is_required())


DEFAULT_LOG_RETENTION_DAYS = 30


class PolicySpec(_OptionalSection):
    _OMIT_WHEN_UNSET = ("log_retention_days",)

    escalate_below_confidence: float = Field(0.55, ge=0.0, le=1.0)
    blocked_labels: list[str] = []
    log_text: bool = False          # put the (PII-scrubbed) text in inference.logged
    # How long logged text may be kept: the monitor's ledger removes it after this (retention.applied),
    # and the deployer logs none when the bus keeps inference.logged longer (inference_log_retention_days).
    log_retention_days: int | None = Field(None, ge=1, le=3650)
    auto_rollback: bool = True      # the monitor may ask for a rollback itself
    retrain_on_rollback: bool = False

    @property
    def retention_days(self) -> int:
        """How many days logged text is kept (30 unless the goal says)."""
        return self.log_retention_days or DEFAULT_LOG_RETENTION_DAYS


class RolloutSpec(_OptionalSection):
    _OMIT_WHEN_UNSET = ("approval",)

    strategy: Literal["canary", "blue-green"] = "canary"
    steps: list[int] = [10, 50, 100]
    min_requests_per_step: int = Field(200, ge=1)
    max_step_seconds: float = Field(600, gt=0)
    min_step_seconds: float = Field(0, ge=0)
    min_agreement: float = Field(0.9, ge=0.0, le=1.0)
    # `required`: an approved adapter takes no traffic until a person with an `operate` credential of the
    # goal's tenant approves it (`tuneline deployments approve GOAL`); unset is `none`.
    approval: Literal["none", "required"] | None = None

    @property
    def requires_approval(self) -> bool:
        """Whether an adapter that passed its gate waits for a person before it takes traffic."""
        return self.approval == "required"

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if not v or any(not 0 < s <= 100 for s in v) or v != sorted(set(v)) or v[-1] != 100:
            raise ValueError("steps must be strictly increasing percentages in (0, 100] ending at 100")
        return v


class AccuracyDropSpec(_Strict):
    """Roll back when live accuracy (from feedback.recorded) falls significantly below the evaluated one."""

    # The drop tolerated: a window is breached when its accuracy is significantly below
    # (evaluated accuracy - max_drop), by a one-sided exact binomial test at `alpha`.
    max_drop: float = Field(0.05, gt=0.0, lt=1.0)
    min_samples: int = Field(200, ge=20)   # predictions with ground truth per window
    alpha: float = Field(0.01, gt=0.0, le=0.2)


class RollbackSpec(_OptionalSection):
    _OMIT_WHEN_UNSET = ("accuracy_drop",)

    error_rate: float = Field(0.02, ge=0.0, le=1.0)
    latency_p99_ms: float = Field(100, gt=0)
    drift_share: float = Field(0.5, gt=0.0, le=1.0)
    drift_windows: int = Field(2, ge=1)
    window_size: int = Field(500, ge=20)
    cooldown_seconds: float = Field(300, ge=0)
    recent_promotion_seconds: float = Field(3600, ge=0)
    accuracy_drop: AccuracyDropSpec | None = None


class Goal(_Strict):
    """A validated goal. `version` is the digest of its canonical JSON."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    tenant: str = Field(DEFAULT_TENANT, pattern=TENANT_PATTERN)
    base_model: str = "bundled:all-MiniLM-L6-v2"
    task: TaskSpec = TaskSpec()
    data: DataSpec
    approach: ApproachSpec = ApproachSpec()
    training: TrainingSpec = TrainingSpec()
    acceptance: AcceptanceSpec
    policy: PolicySpec = PolicySpec()
    rollout: RolloutSpec = RolloutSpec()
    rollback: RollbackSpec = RollbackSpec()

    @model_validator(mode="after")
    def _dataset_name(self) -> Goal:
        if not self.data.dataset.strip():
            raise ValueError("data.dataset must name a dataset")
        if self.acceptance.privacy_epsilon is not None and self.training.privacy is None:
            raise ValueError("acceptance.privacy_epsilon needs training.privacy: a run trained without DP has no epsilon "
                             "and can never pass it (add training.privacy: {epsilon: ..., delta: ...})")
        return self

    def canonical_json(self) -> str:
        """The goal as canonical JSON (sorted keys, no spaces)."""
        return canonical_json(self.model_dump(mode="json")).decode()

    @property
    def version(self) -> str:
        """`sha256:` of the canonical JSON."""
        return digest_json(self.model_dump(mode="json"))


def _explain(err: ValidationError, source: str) -> ConfigError:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{key}: {msg}")
    return ConfigError(f"invalid goal {source}: " + "; ".join(lines), hint="fix the named keys and apply it again")


def parse_goal(data: object, source: str = "") -> Goal:
    """Validate a goal given as a mapping (from YAML or JSON)."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid goal {source}: expected a mapping at the top level")
    try:
        return Goal.model_validate(data)
    except ValidationError as err:
        raise _explain(err, source) from None


def load_goal(path: str | Path) -> Goal:
    """Read and validate a goal YAML file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"goal file not found: {p}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"goal file {p} is not valid YAML: {err}") from None
    return parse_goal(data, str(p))


def goal_from_json(text: str) -> Goal:
    """A goal from the canonical JSON carried by `goal.applied`."""
    return parse_goal(json.loads(text), "from goal.applied")
