"""Two runs side by side: what differs in their envelopes, and what their evaluations say about each other.

Pure functions over the runs' envelopes (JSON), gate outcomes and evaluation reports (JSON). The paired
test is McNemar's exact test on the rows where exactly one of the two is right; it is only computed
when both were evaluated on the same rows (the same eval split digest and length), otherwise the
comparison says why it is not paired.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy.stats import binomtest

# Where each envelope field belongs: what changed in the code, the data, the config or the environment.
_SECTIONS = {"code_version": "code", "dependency_lock": "code", "goal_json": "config", "goal_version": "config",
             "goal_name": "config", "seeds": "config", "world_size": "config", "use_gpu": "config", "privacy": "config",
             "hardware": "environment"}
_SKIP = {"goal_json"}  # compared through its parsed fields (config.goal.*), not as one string


@dataclass(frozen=True)
class Change:
    section: str
    path: str
    a: str
    b: str


@dataclass(frozen=True)
class Delta:
    name: str
    a: float
    b: float

    @property
    def delta(self) -> float:
        return self.b - self.a


@dataclass(frozen=True)
class CriterionDelta:
    name: str
    a: float
    b: float
    a_passed: bool
    b_passed: bool
    comparator: str
    threshold: float


@dataclass(frozen=True)
class Paired:
    paired: bool
    reason: str = ""
    rows: int = 0
    only_a: int = 0
    only_b: int = 0
    p_value: float = math.nan
    accuracy_a: float = math.nan
    accuracy_b: float = math.nan


@dataclass(frozen=True)
class Changed:
    row: int
    truth: str
    a: str
    b: str


@dataclass
class Comparison:
    envelope: list[Change] = field(default_factory=list)
    metrics: list[Delta] = field(default_factory=list)
    criteria: list[CriterionDelta] = field(default_factory=list)
    labels: list[Delta] = field(default_factory=list)
    slices: list[Delta] = field(default_factory=list)
    paired: Paired = field(default_factory=lambda: Paired(False, "no evaluation reports to pair"))
    changed: list[Changed] = field(default_factory=list)
    changed_total: int = 0


def _flat(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k in sorted(value):
            out |= _flat(value[k], f"{prefix}.{k}" if prefix else str(k))
        return out
    return {prefix: json.dumps(value, sort_keys=True) if not isinstance(value, str) else value}


def envelope_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Change]:
    """Every envelope field that differs, by section; the goal's JSON compared field by field."""
    def expanded(env: Mapping[str, Any]) -> dict[str, str]:
        fields = {k: v for k, v in env.items() if k not in _SKIP}
        try:
            goal = json.loads(env.get("goal_json") or "{}")
        except json.JSONDecodeError:
            goal = {"goal_json": env.get("goal_json")}
        return _flat(fields, "") | _flat({"goal": goal}, "")

    fa, fb = expanded(a), expanded(b)
    out = []
    for path in sorted(set(fa) | set(fb)):
        if fa.get(path) != fb.get(path):
            top = path.split(".", 1)[0]
            section = "config" if top == "goal" else _SECTIONS.get(top, "data")
            out.append(Change(section, f"{section}.{path}", fa.get(path, "—"), fb.get(path, "—")))
    order = {"code": 0, "data": 1, "config": 2, "environment": 3}
    return sorted(out, key=lambda c: (order[c.section], c.path))


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def _deltas(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Delta]:
    return [Delta(k, _num(a.get(k)), _num(b.get(k))) for k in sorted(set(a) | set(b))]


def compare(env_a: Mapping[str, Any], env_b: Mapping[str, Any], outcome_a: Mapping[str, Any], outcome_b: Mapping[str, Any],
            report_a: Mapping[str, Any] | None, report_b: Mapping[str, Any] | None, max_examples: int = 50) -> Comparison:
    """The comparison of run A with run B (deltas are B - A).

    `outcome_*`: {"metrics": {...}, "criteria": [{"name", "value", "threshold", "comparator", "passed"}]};
    `report_*`: the evaluator's JSON report (None when it could not be read).
    """
    out = Comparison(envelope=envelope_changes(env_a, env_b), metrics=_deltas(outcome_a.get("metrics", {}), outcome_b.get("metrics", {})))
    ca = {c["name"]: c for c in outcome_a.get("criteria", [])}
    cb = {c["name"]: c for c in outcome_b.get("criteria", [])}
    for name in sorted(set(ca) | set(cb)):
        x, y = ca.get(name, {}), cb.get(name, {})
        out.criteria.append(CriterionDelta(name, _num(x.get("value")), _num(y.get("value")), bool(x.get("passed")),
                                           bool(y.get("passed")), str(y.get("comparator") or x.get("comparator") or ""),
                                           _num(y.get("threshold", x.get("threshold")))))
    if report_a is None or report_b is None:
        return out
    fa, fb = report_a.get("findings") or {}, report_b.get("findings") or {}
    out.labels = _deltas(_per_label(fa), _per_label(fb))
    out.slices = _deltas(_per_slice(fa), _per_slice(fb))
    same_rows = (report_a.get("identity", {}).get("eval_data_digest") == report_b.get("identity", {}).get("eval_data_digest"))
    out.paired, out.changed, out.changed_total = paired(fa.get("predicted") or [], fb.get("predicted") or [],
                                                        fa.get("truth") or [], fb.get("truth") or [], same_rows, max_examples)
    return out


def _per_label(findings: Mapping[str, Any]) -> dict[str, float]:
    return {s["label"]: s["f1"] for s in ((findings.get("metrics") or {}).get("per_label") or [])}


def _per_slice(findings: Mapping[str, Any]) -> dict[str, float]:
    return {s["name"]: s["accuracy"] for s in ((findings.get("slices") or {}).get("slices") or [])}


def paired(pred_a: Sequence[str], pred_b: Sequence[str], truth_a: Sequence[str], truth_b: Sequence[str], same_rows: bool,
           max_examples: int) -> tuple[Paired, list[Changed], int]:
    """McNemar's exact test over the rows where exactly one is right, and the rows whose answer changed."""
    if not pred_a or not pred_b:
        return Paired(False, "a report has no per-row predictions (evaluated before they were recorded)"), [], 0
    if not same_rows or len(pred_a) != len(pred_b) or list(truth_a) != list(truth_b):
        return Paired(False, "the two runs were evaluated on different rows (different eval splits)"), [], 0
    right_a = [p == t for p, t in zip(pred_a, truth_a, strict=True)]
    right_b = [p == t for p, t in zip(pred_b, truth_a, strict=True)]
    only_a = sum(x and not y for x, y in zip(right_a, right_b, strict=True))
    only_b = sum(y and not x for x, y in zip(right_a, right_b, strict=True))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    rows = len(truth_a)
    changed = [Changed(i, truth_a[i], pred_a[i], pred_b[i]) for i in range(rows) if pred_a[i] != pred_b[i]]
    return (Paired(True, "", rows, only_a, only_b, float(p), sum(right_a) / rows, sum(right_b) / rows),
            changed[:max_examples], len(changed))
