"""The fail-closed acceptance gate.

Every criterion the goal's `acceptance` declares must be measured and pass. A criterion with no
measurement, a NaN or infinite value, or a measurement marked not computed fails the gate and says
why; the gate never fills a gap with a default. `vs_champion` is judged by the paired test
(domain/champion.py), so its measurement carries its own verdict. An optional criterion
(`privacy_epsilon`) is judged only when the goal sets it, and then exactly like the others: a run
trained without DP has no epsilon, and fails it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from services.kernel.goal import AcceptanceSpec, ChampionCriterion, MaxCriterion, MinCriterion


@dataclass(frozen=True)
class Measurement:
    value: float | None
    reason: str = ""             # why it could not be computed, or a note (e.g. "no slice field")
    verdict: bool | None = None  # set by criteria that judge themselves (vs_champion)


@dataclass(frozen=True)
class CriterionResult:
    name: str
    value: float
    threshold: float
    comparator: str       # "min": value >= threshold; "max": value <= threshold
    computed: bool
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    criteria: tuple[CriterionResult, ...]
    summary: str


def _bound(spec: object) -> tuple[float, str]:
    if isinstance(spec, MinCriterion):
        return spec.min, "min"
    if isinstance(spec, MaxCriterion):
        return spec.max, "max"
    if isinstance(spec, ChampionCriterion):
        return spec.min_delta, "min"
    raise TypeError(f"unknown acceptance criterion type {type(spec).__name__}")


def _judge_one(name: str, spec: object, m: Measurement | None) -> CriterionResult:
    threshold, comparator = _bound(spec)
    if m is None or m.value is None:
        why = m.reason if m and m.reason else "no measurement"
        return CriterionResult(name, math.nan, threshold, comparator, False, False, f"not computed: {why}")
    value = float(m.value)
    if not math.isfinite(value):
        why = f": {m.reason}" if m.reason else ""
        return CriterionResult(name, value, threshold, comparator, False, False, f"value is {value}{why}")
    if isinstance(spec, ChampionCriterion):
        if m.verdict is None:
            return CriterionResult(name, value, threshold, comparator, True, False, "no paired-test verdict")
        return CriterionResult(name, value, threshold, comparator, True, m.verdict, m.reason)
    ok = value >= threshold if comparator == "min" else value <= threshold
    sign = (">=" if ok else "<") if comparator == "min" else ("<=" if ok else ">")
    reason = f"{value:.4g} {sign} {comparator} {threshold:.4g}" + (f" ({m.reason})" if m.reason else "")
    return CriterionResult(name, value, threshold, comparator, True, ok, reason)


def judge(acceptance: AcceptanceSpec, measured: Mapping[str, Measurement]) -> GateDecision:
    """Judge every declared criterion; the gate passes only when all of them pass."""
    results = tuple(
        _judge_one(name, getattr(acceptance, name), measured.get(name)) for name in acceptance.declared()
    )
    failed = [r for r in results if not r.passed]
    if not failed:
        return GateDecision(True, results, f"passed: all {len(results)} criteria met")
    detail = "; ".join(f"{r.name} {r.reason}" for r in failed)
    return GateDecision(False, results, f"failed {len(failed)} of {len(results)}: {detail}")


def refused(acceptance: AcceptanceSpec, reason: str) -> GateDecision:
    """A decision for a run that could not be evaluated at all (e.g. a tampered adapter)."""
    missing = {name: Measurement(None, reason) for name in acceptance.declared()}
    decision = judge(acceptance, missing)
    return GateDecision(False, decision.criteria, f"refused: {reason}")
