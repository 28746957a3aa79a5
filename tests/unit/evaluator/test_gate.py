import math

from services.evaluator.domain.gate import Measurement, judge, refused

GOOD = {
    "accuracy": Measurement(0.9), "macro_f1": Measurement(0.88), "ece": Measurement(0.03),
    "robustness_drop": Measurement(0.02), "slice_gap": Measurement(0.0, "no slice field"),
    "latency_p95_ms": Measurement(12.0), "vs_champion": Measurement(0.0, "no champion serving", True),
}


def _by_name(decision):
    return {c.name: c for c in decision.criteria}


def test_all_criteria_met_passes(base_goal):
    d = judge(base_goal.acceptance, GOOD)
    assert d.passed and len(d.criteria) == 7
    assert _by_name(d)["vs_champion"].reason == "no champion serving"
    assert _by_name(d)["slice_gap"].reason.endswith("(no slice field)")


def test_an_impossible_threshold_fails_naming_the_criterion(base_goal, goal_with):
    goal = goal_with(base_goal, acceptance={"accuracy": {"min": 0.999}})
    d = judge(goal.acceptance, GOOD)
    assert not d.passed
    acc = _by_name(d)["accuracy"]
    assert (acc.passed, acc.value, acc.threshold, acc.comparator) == (False, 0.9, 0.999, "min")
    assert "accuracy" in d.summary and "failed 1 of 7" in d.summary
    assert all(c.passed for c in d.criteria if c.name != "accuracy")


def test_a_missing_measurement_fails_closed(base_goal):
    measured = dict(GOOD)
    del measured["ece"]
    d = judge(base_goal.acceptance, measured)
    ece = _by_name(d)["ece"]
    assert not d.passed and not ece.computed and ece.reason == "not computed: no measurement"
    assert math.isnan(ece.value)


def test_a_criterion_that_could_not_be_computed_fails_with_its_reason(base_goal):
    measured = dict(GOOD, latency_p95_ms=Measurement(None, "latency failed: RuntimeError: boom"))
    d = judge(base_goal.acceptance, measured)
    assert not d.passed and "latency failed: RuntimeError: boom" in _by_name(d)["latency_p95_ms"].reason


def test_nan_and_infinity_fail_even_against_a_lenient_threshold(base_goal, goal_with):
    goal = goal_with(base_goal, acceptance={"ece": {"max": 1e9}})
    for bad in (float("nan"), float("inf")):
        d = judge(goal.acceptance, dict(GOOD, ece=Measurement(bad)))
        assert not d.passed and not _by_name(d)["ece"].computed


def test_vs_champion_needs_a_verdict(base_goal):
    d = judge(base_goal.acceptance, dict(GOOD, vs_champion=Measurement(0.05)))
    assert not d.passed and _by_name(d)["vs_champion"].reason == "no paired-test verdict"


def test_refused_fails_every_criterion_with_the_reason(base_goal):
    d = refused(base_goal.acceptance, "IntegrityError: digest mismatch")
    assert not d.passed and d.summary.startswith("refused: IntegrityError")
    assert all(not c.passed and "digest mismatch" in c.reason for c in d.criteria)


def test_privacy_epsilon_is_judged_only_when_the_goal_sets_it_and_then_fails_closed(base_goal, goal_with):
    from services.evaluator.domain.privacy import guarantee_of, measurement

    assert "privacy_epsilon" not in _by_name(judge(base_goal.acceptance, GOOD))
    goal = goal_with(base_goal, training={"privacy": {"epsilon": 3}}, acceptance={"privacy_epsilon": {"max": 3.0}})
    assert guarantee_of({"accuracy": 0.9}) is None
    d = judge(goal.acceptance, dict(GOOD, privacy_epsilon=measurement(None)))
    assert not d.passed and "not trained with differential privacy" in _by_name(d)["privacy_epsilon"].reason
    spent = guarantee_of({"privacy_epsilon": 2.95, "privacy_delta": 1e-5, "privacy_accountant_prv": 1.0})
    assert spent is not None and spent.accountant == "prv"
    assert judge(goal.acceptance, dict(GOOD, privacy_epsilon=measurement(spent))).passed
    over = guarantee_of({"privacy_epsilon": 3.2, "privacy_delta": 1e-5})
    assert not judge(goal.acceptance, dict(GOOD, privacy_epsilon=measurement(over))).passed
    no_delta = guarantee_of({"privacy_epsilon": 1.0})
    assert not judge(goal.acceptance, dict(GOOD, privacy_epsilon=measurement(no_delta))).passed
    assert len(refused(goal.acceptance, "boom").criteria) == 8


def test_a_model_that_escalates_everything_cannot_pass_a_goal_that_bounds_escalation(base_goal, goal_with):
    import numpy as np

    from services.evaluator.domain.policy import policy_outcome
    from services.evaluator.domain.report import Findings, measurements

    def judged(confidence: list[float], correct: list[bool]):
        outcome = policy_outcome(np.array(confidence), np.array(correct), ["a"] * len(correct), 0.55, [])
        found = Findings(None, None, None, None, None, outcome, None, "", ())
        policy = {k: v for k, v in measurements(found).items() if k in ("escalation_rate", "answered_accuracy")}
        return judge(goal.acceptance, GOOD | policy)

    assert "escalation_rate" not in _by_name(judge(base_goal.acceptance, GOOD)), "judged only when the goal sets it"
    goal = goal_with(base_goal, acceptance={"escalation_rate": {"max": 0.2}, "answered_accuracy": {"min": 0.9}})
    assert goal.version != base_goal.version and len(goal.acceptance.declared()) == 9
    timid = judged([0.3] * 10, [True] * 10)  # always right, never confident: every prediction goes to a person
    assert not timid.passed
    assert "1 > max 0.2" in _by_name(timid)["escalation_rate"].reason
    assert "none answered" in _by_name(timid)["answered_accuracy"].reason and not _by_name(timid)["answered_accuracy"].passed
    sure = judged([0.9] * 9 + [0.3], [True] * 9 + [False])  # escalates the one it gets wrong
    assert sure.passed, sure.summary
    reckless = judged([0.9] * 10, [True] * 8 + [False] * 2)  # answers everything, 80 % right
    assert not reckless.passed and not _by_name(reckless)["answered_accuracy"].passed
    assert _by_name(reckless)["escalation_rate"].passed
