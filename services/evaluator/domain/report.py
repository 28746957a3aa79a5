"""The evaluation report: every number, threshold, decision and digest, as one typed value.

`report_json` is what gets stored content-addressed; NaN becomes null because JSON has no NaN.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from services.evaluator.domain.calibration import Calibration
from services.evaluator.domain.champion import ChampionComparison
from services.evaluator.domain.gate import GateDecision, Measurement
from services.evaluator.domain.latency import LatencyStats
from services.evaluator.domain.metrics import ClassificationMetrics, SliceReport
from services.evaluator.domain.policy import PolicyOutcome
from services.evaluator.domain.privacy import PrivacyGuarantee
from services.evaluator.domain.privacy import measurement as privacy_measurement
from services.evaluator.domain.robustness import RobustnessResult

NO_CHAMPION = "no champion serving"


@dataclass(frozen=True)
class Identity:
    eval_id: str
    run_id: str
    goal_name: str
    goal_version: str
    dataset_name: str
    dataset_version: str
    base_model: str
    method: str
    adapter_digest: str
    eval_data_digest: str
    created_at: str


@dataclass(frozen=True)
class Findings:
    """What was measured; a part is None when it could not be computed (see `problems`)."""

    metrics: ClassificationMetrics | None
    calibration: Calibration | None
    robustness: RobustnessResult | None
    slices: SliceReport | None
    latency: LatencyStats | None
    policy: PolicyOutcome | None
    champion: ChampionComparison | None
    champion_reason: str              # why there is no comparison (no champion, or what failed)
    problems: tuple[str, ...]         # "<part>: <error>" for every part that failed to compute
    privacy: PrivacyGuarantee | None = None   # the run's DP-SGD guarantee; None: not trained with DP
    # Each eval row's prediction and true label, in the split's order: what `tuneline runs compare` pairs.
    predicted: tuple[str, ...] = ()
    truth: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalReport:
    identity: Identity
    findings: Findings
    decision: GateDecision


def _reason(findings: Findings, part: str) -> str:
    # A part's own error first; else the scoring error every part depends on.
    for name in (part, "scoring"):
        found = [p.split(": ", 1)[1] for p in findings.problems if p.startswith(name + ": ")]
        if found:
            return f"{name} failed: {found[0]}"
    return f"{part} not computed"


def measurements(f: Findings) -> dict[str, Measurement]:
    """The value of each acceptance criterion from the findings; missing parts stay unmeasured."""
    m = {
        "accuracy": Measurement(f.metrics.accuracy) if f.metrics else Measurement(None, _reason(f, "metrics")),
        "macro_f1": Measurement(f.metrics.macro_f1) if f.metrics else Measurement(None, _reason(f, "metrics")),
        "ece": Measurement(f.calibration.ece) if f.calibration else Measurement(None, _reason(f, "calibration")),
        "robustness_drop": Measurement(f.robustness.drop) if f.robustness else Measurement(None, _reason(f, "robustness")),
        "slice_gap": Measurement(f.slices.gap, f.slices.reason) if f.slices else Measurement(None, _reason(f, "slices")),
        "latency_p95_ms": Measurement(f.latency.p95_ms) if f.latency else Measurement(None, _reason(f, "latency")),
    }
    if f.champion is not None:
        m["vs_champion"] = Measurement(f.champion.delta, f.champion.reason, f.champion.passed)
    elif f.champion_reason == NO_CHAMPION:
        m["vs_champion"] = Measurement(0.0, NO_CHAMPION, True)
    else:
        m["vs_champion"] = Measurement(None, f.champion_reason or _reason(f, "champion"))
    m["privacy_epsilon"] = privacy_measurement(f.privacy)
    m |= _policy_measurements(f)
    return m


def _policy_measurements(f: Findings) -> dict[str, Measurement]:
    if f.policy is None:
        return {name: Measurement(None, _reason(f, "policy")) for name in ("escalation_rate", "answered_accuracy")}
    nothing = "" if f.policy.answered_rows else \
        f"every prediction is below escalate_below_confidence {f.policy.threshold:g}: none answered"
    return {"escalation_rate": Measurement(f.policy.escalation_rate),
            "answered_accuracy": Measurement(f.policy.answered_accuracy, nothing)}


def headline_metrics(f: Findings) -> dict[str, float]:
    """The flat numbers an event carries (NaN where a part is missing)."""
    out: dict[str, float] = {}
    if f.metrics:
        out |= {"accuracy": f.metrics.accuracy, "macro_f1": f.metrics.macro_f1, "rows": float(f.metrics.rows)}
    if f.calibration:
        out["ece"] = f.calibration.ece
    if f.robustness:
        out["robustness_drop"] = f.robustness.drop
        out |= {f"robustness_{p.kind}_accuracy": p.accuracy for p in f.robustness.per_kind}
    if f.slices:
        out["slice_gap"] = f.slices.gap
    if f.latency:
        out |= {"latency_p50_ms": f.latency.p50_ms, "latency_p95_ms": f.latency.p95_ms,
                "throughput_rows_s": f.latency.throughput_rows_s}
    if f.policy:
        out |= {"escalation_rate": f.policy.escalation_rate, "answered_accuracy": f.policy.answered_accuracy,
                "blocked_predictions": float(f.policy.blocked_predictions)}
    if f.champion:
        out |= {"champion_delta": f.champion.delta, "champion_p_value": f.champion.p_value}
    if f.privacy:
        out |= {"privacy_epsilon": f.privacy.epsilon, "privacy_delta": f.privacy.delta,
                "privacy_noise_multiplier": f.privacy.noise_multiplier}
    return out


def _clean(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def report_json(report: EvalReport) -> bytes:
    """The report as JSON bytes (sorted keys; NaN and infinities as null)."""
    doc = _clean(asdict(report))
    return json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False).encode()
