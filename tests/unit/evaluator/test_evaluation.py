import json

import numpy as np
import pytest

from services.evaluator.adapters import report_html
from services.evaluator.domain.report import Identity, report_json
from services.evaluator.evaluation import ChampionModel, EvalConfig, EvalData, evaluate

LABELS = ["card_arrival", "top_up", "transfer", "refund"]
KEYWORDS = {"card": "card_arrival", "top": "top_up", "transfer": "transfer", "refund": "refund"}
CFG = EvalConfig(robustness_rows=40, latency_rows=10, latency_warmup=2)


def _data(n: int = 80, slices: bool = False) -> EvalData:
    rng = np.random.default_rng(0)
    labels = [LABELS[i % 4] for i in range(n)]
    words = {v: k for k, v in KEYWORDS.items()}
    texts = [f"question {i} about my {words[lab]} please {'x' * int(rng.integers(0, 5))}" for i, lab in enumerate(labels)]
    sl = tuple("web" if i % 3 else "app" for i in range(n)) if slices else None
    return EvalData(tuple(texts), tuple(labels), sl)


def keyword_rule(text: str) -> str:
    """Right whenever the keyword survives; a typo in it sends the text to 'refund'."""
    lowered = text.lower()
    return next((lab for kw, lab in KEYWORDS.items() if kw in lowered), "refund")


def _identity() -> Identity:
    d = "sha256:" + "0" * 64
    return Identity("e1", "r1", "banking77", d, "banking77", d, "bundled:x", "lora", d, d, "2026-01-01T00:00:00")


def _by_name(report):
    return {c.name: c for c in report.decision.criteria}


def test_a_good_model_passes_every_criterion(base_goal, fake_scorer):
    report, scoring = evaluate(_identity(), base_goal, _data(), fake_scorer(LABELS, keyword_rule, conf=0.97), None, CFG)
    f = report.findings
    assert f.metrics is not None and f.calibration is not None and f.robustness is not None and f.latency is not None
    assert scoring is not None
    assert f.metrics.accuracy == 1.0 and f.metrics.macro_f1 == 1.0
    assert f.calibration.ece == pytest.approx(0.03, abs=1e-6)
    assert f.champion_reason == "no champion serving"
    assert report.decision.passed, report.decision.summary
    assert _by_name(report)["slice_gap"].reason.endswith("(no slice field)")
    assert {p.kind for p in f.robustness.per_kind} == {"typos", "casing", "punctuation", "whitespace"}
    assert f.latency.requests == 10 and f.latency.p95_ms >= f.latency.p50_ms
    assert scoring.correct.all()


def test_policy_outcomes_at_the_confidence_threshold(base_goal, fake_scorer, goal_with):
    goal = goal_with(base_goal, policy={"escalate_below_confidence": 0.95, "blocked_labels": ["refund"]})
    report, _ = evaluate(_identity(), goal, _data(), fake_scorer(LABELS, keyword_rule, conf=0.9), None, CFG)
    p = report.findings.policy
    assert p is not None
    assert p.escalation_rate == 1.0 and p.answered_rows == 0 and np.isnan(p.answered_accuracy)
    assert p.blocked_predictions == 20 and p.blocked_answered == 0


def test_an_impossible_threshold_fails_with_that_criterion_named(base_goal, fake_scorer, goal_with):
    goal = goal_with(base_goal, acceptance={"macro_f1": {"min": 1.01}})
    report, _ = evaluate(_identity(), goal, _data(), fake_scorer(LABELS, keyword_rule, conf=0.97), None, CFG)
    assert not report.decision.passed
    assert [c.name for c in report.decision.criteria if not c.passed] == ["macro_f1"]
    assert "macro_f1" in report.decision.summary


def test_a_part_that_raises_fails_closed_with_its_error(base_goal, fake_scorer, monkeypatch):
    from services.evaluator import evaluation

    def broken(*_a, **_k):
        raise ValueError("perturbation table corrupt")

    monkeypatch.setattr(evaluation, "measure_robustness", broken)
    report, _ = evaluate(_identity(), base_goal, _data(), fake_scorer(LABELS, keyword_rule, conf=0.97), None, CFG)
    rob = _by_name(report)["robustness_drop"]
    assert not report.decision.passed and not rob.computed
    assert "perturbation table corrupt" in rob.reason
    assert all(c.passed for c in report.decision.criteria if c.name != "robustness_drop")


def test_a_model_that_cannot_score_fails_every_criterion(base_goal, fake_scorer):
    report, scoring = evaluate(_identity(), base_goal, _data(), fake_scorer(LABELS, keyword_rule, fail=True), None, CFG)
    assert scoring is None and not report.decision.passed
    assert all(not c.passed and "model exploded" in c.reason for c in report.decision.criteria)


def test_slices_are_measured_when_the_goal_names_a_field(base_goal, fake_scorer, goal_with):
    goal = goal_with(base_goal, task={"slice_field": "channel"})
    rule = lambda t: keyword_rule(t) if int(t.split()[1]) % 3 else "refund"  # noqa: E731 - wrong on "app" rows
    report, _ = evaluate(_identity(), goal, _data(slices=True), fake_scorer(LABELS, rule, conf=0.97), None, CFG)
    sl = report.findings.slices
    assert sl is not None
    assert sl.worst == "app" and sl.gap > 0.10
    assert not _by_name(report)["slice_gap"].passed


def test_a_worse_candidate_fails_vs_champion_with_the_statistic(base_goal, fake_scorer):
    worse = lambda t: "refund" if "transfer" in t or "top" in t else keyword_rule(t)  # noqa: E731
    champ = ChampionModel("sha256:" + "c" * 64, fake_scorer(LABELS, keyword_rule, conf=0.97))
    report, _ = evaluate(_identity(), base_goal, _data(), fake_scorer(LABELS, worse, conf=0.97), champ, CFG)
    c = report.findings.champion
    assert c is not None
    assert not _by_name(report)["vs_champion"].passed
    assert c.champion_only == 40 and c.candidate_only == 0 and c.p_value < 1e-6 and c.statistic == 40.0
    doc = json.loads(report_json(report))
    assert doc["findings"]["champion"]["statistic"] == 40.0
    assert doc["findings"]["champion"]["p_value"] == c.p_value


def test_a_champion_that_cannot_load_fails_closed(base_goal, fake_scorer):
    champ = ChampionModel("sha256:" + "c" * 64, None, "IntegrityError: mismatch")
    report, _ = evaluate(_identity(), base_goal, _data(), fake_scorer(LABELS, keyword_rule, conf=0.97), champ, CFG)
    vs = _by_name(report)["vs_champion"]
    assert not vs.passed and "could not be loaded: IntegrityError" in vs.reason


def test_report_json_and_html_hold_the_numbers_and_the_plots(base_goal, fake_scorer, goal_with):
    goal = goal_with(base_goal, task={"slice_field": "channel"})
    champ = ChampionModel("sha256:" + "c" * 64, fake_scorer(LABELS, keyword_rule, conf=0.8))
    report, _ = evaluate(_identity(), goal, _data(slices=True), fake_scorer(LABELS, keyword_rule, 0.97), champ, CFG)
    doc = json.loads(report_json(report))
    assert doc["decision"]["passed"] is report.decision.passed
    assert {c["name"] for c in doc["decision"]["criteria"]} >= {"accuracy", "ece", "vs_champion"}
    assert doc["identity"]["adapter_digest"].startswith("sha256:")
    html = report_html.render(report).decode()
    for title in ("Confusion matrix", "Reliability diagram", "Per-slice accuracy", "Robustness by perturbation",
                  "Candidate vs champion"):
        assert f'alt="{title}" src="data:image/png;base64,' in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
