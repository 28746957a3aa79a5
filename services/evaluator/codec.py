"""Between the evaluator's typed values and the wire: EvalOutcome protobufs."""

from __future__ import annotations

from tuneline.events.v1 import events_pb2 as ev

from services.evaluator.domain.champion import ChampionComparison
from services.evaluator.domain.gate import GateDecision
from services.evaluator.domain.report import EvalReport, Identity, headline_metrics
from services.kernel import features
from services.kernel.events import Outgoing


def criteria_messages(decision: GateDecision) -> list[ev.Criterion]:
    """Every criterion's value, threshold, comparator and decision."""
    return [
        ev.Criterion(name=c.name, value=c.value, threshold=c.threshold, comparator=c.comparator,
                     computed=c.computed, passed=c.passed, reason=c.reason)
        for c in decision.criteria
    ]


def champion_message(c: ChampionComparison) -> ev.ChampionComparison:
    """The paired test's numbers."""
    return ev.ChampionComparison(
        champion_digest=c.champion_digest, test=c.test, statistic=c.statistic, p_value=c.p_value, delta=c.delta,
        candidate_accuracy=c.candidate_accuracy, champion_accuracy=c.champion_accuracy, rows=c.rows,
    )


def reference_message(table: ev.ArtifactRef, rows: int) -> ev.ReferenceProfile:
    """The reference profile pointer with how its embedding columns were projected."""
    return ev.ReferenceProfile(
        table=table, rows=rows, feature_names=list(features.FEATURE_NAMES),
        projection_dims=features.PROJECTION_DIMS, projection_seed=features.PROJECTION_SEED,
    )


def outcome(identity: Identity, run: ev.RunFinished, decision: GateDecision) -> ev.EvalOutcome:
    """The outcome's identity and decision (reports, metrics and reference are added by the caller)."""
    return ev.EvalOutcome(
        eval_id=identity.eval_id, run_id=run.run_id, goal_name=run.goal_name, goal_version=run.goal_version,
        dataset_name=run.dataset_name, dataset_version=run.dataset_version, adapter=run.adapter,
        adapter_signature=run.adapter_signature, passed=decision.passed, criteria=criteria_messages(decision),
        summary=decision.summary, base_model=run.base_model, labels=list(run.labels), method=run.method,
    )


def report_outcome(report: EvalReport, run: ev.RunFinished) -> ev.EvalOutcome:
    """An outcome with the report's numbers and the champion comparison."""
    out = outcome(report.identity, run, report.decision)
    for name, value in headline_metrics(report.findings).items():
        out.metrics[name] = value
    if report.findings.champion is not None:
        out.champion.CopyFrom(champion_message(report.findings.champion))
    return out


def decision_event(out: ev.EvalOutcome) -> Outgoing:
    """eval.passed or eval.failed, keyed by the goal."""
    message = ev.EvalPassed(outcome=out) if out.passed else ev.EvalFailed(outcome=out)
    return Outgoing(message, subject=out.goal_name)
