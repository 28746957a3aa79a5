"""The HTML report escapes every string that comes from a goal, a dataset or an error, wherever it
is rendered: a label or slice name is text on the page, never markup."""

from __future__ import annotations

import dataclasses
from html import escape

from services.evaluator.adapters import report_html
from services.evaluator.domain.gate import CriterionResult, GateDecision
from services.evaluator.domain.metrics import ClassificationMetrics, LabelScore, SliceAccuracy, SliceReport
from services.evaluator.domain.policy import PolicyOutcome
from services.evaluator.domain.report import EvalReport, Findings, Identity

EVIL = "<script>alert(1)</script>"
ESCAPED = escape(EVIL, quote=False)


def _report(slices: SliceReport) -> EvalReport:
    metrics = ClassificationMetrics(rows=2, accuracy=0.5, macro_f1=0.5, labels=(EVIL, "ok"),
                                    per_label=(LabelScore(EVIL, 0.5, 0.5, 0.5, 1, 1), LabelScore("ok", 0.5, 0.5, 0.5, 1, 1)),
                                    confusion=((1, 0), (1, 0)))
    policy = PolicyOutcome(threshold=0.5, escalation_rate=0.0, answered_accuracy=0.5, answered_rows=2,
                           blocked_labels=(EVIL,), blocked_predictions=1, blocked_answered=0)
    findings = Findings(metrics=metrics, calibration=None, robustness=None, slices=slices, latency=None, policy=policy,
                        champion=None, champion_reason=f"champion {EVIL} not loaded", problems=(f"slices: {EVIL}",))
    criterion = CriterionResult(EVIL, 0.5, 0.1, EVIL, True, False, f"worst slice {EVIL}")
    identity = Identity(*[EVIL] * len(dataclasses.fields(Identity)))
    return EvalReport(identity, findings, GateDecision(False, (criterion,), f"failed: {EVIL}"))


# Where the string lands: the title, the heading (eval id), the banner (summary), the criterion's
# name, comparator and reason, the champion note, the policy's blocked labels, the problem, the
# per-label table, and each of the identity table's values.
PLACES = 1 + 1 + 1 + 3 + 1 + 1 + 1 + 1 + len(dataclasses.fields(Identity))


def test_a_label_or_slice_name_is_escaped_everywhere_it_is_rendered() -> None:
    no_slices = SliceReport(field=EVIL, slices=(), worst="", gap=float("nan"), reason=f"slice column {EVIL} missing")
    html = report_html.render(_report(no_slices)).decode()
    assert "<script" not in html
    assert html.count(ESCAPED) == PLACES + 1, "and the per-slice note"


def test_slice_names_in_a_plot_leave_no_markup_on_the_page() -> None:
    found = SliceReport(field=EVIL, slices=(SliceAccuracy(EVIL, 1, 1.0), SliceAccuracy("b", 1, 0.0)), worst="b", gap=0.5)
    html = report_html.render(_report(found)).decode()
    assert "<script" not in html
    assert html.count(ESCAPED) == PLACES
    assert 'alt="Per-slice accuracy" src="data:image/png;base64,' in html
