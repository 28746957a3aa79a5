"""The evaluation job: fetch and verify, evaluate, store the reports, emit exactly one decision.

The JobRunner commits the job's status and the returned event in one transaction, so a run gets
one eval.passed or eval.failed even when the process dies mid-evaluation (the job is re-executed
from the start on restart: evaluation is deterministic apart from latency, and takes minutes).
An adapter or eval split whose bytes do not match their digest is refused before anything loads
it: the decision is eval.failed with the integrity error as the reason (R20). So is an adapter the
trainer did not sign (`services.kernel.artifact_signing`): its model-signing signature must verify
against the trainer's artifact key over the fetched files, else eval.failed with the reason.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.evaluator import codec, instruments
from services.evaluator.adapters import parquet, report_html
from services.evaluator.domain import gate
from services.evaluator.domain.privacy import guarantee_of
from services.evaluator.domain.profile import reference_table
from services.evaluator.domain.report import EvalReport, Findings, Identity, report_json
from services.evaluator.evaluation import ChampionModel, EvalConfig, Scorer, Scoring, evaluate
from services.evaluator.settings import EvaluatorSettings
from services.evaluator.store import AdapterRow, ChampionRow, EvalRow, RequestRow
from services.kernel.artifact_signing import bundle_of, verify_adapter_signature
from services.kernel.blobs import BlobStore
from services.kernel.errors import NotFound, PermanentError
from services.kernel.events import Outgoing
from services.kernel.goal import Goal
from services.kernel.goals import goal_by_version
from services.kernel.jobs import Job, JobContext
from services.kernel.store import Store, utcnow

log = logging.getLogger(__name__)

LoadScorer = Callable[[str, Path, str], Scorer]


@dataclass(frozen=True)
class EvalDeps:
    store: Store
    blobs: BlobStore
    settings: EvaluatorSettings
    load_scorer: LoadScorer     # (base_model, adapter_dir, digest) -> Scorer; verifies the digest first

    @property
    def config(self) -> EvalConfig:
        """How much of each measurement to run."""
        s = self.settings
        return EvalConfig(s.evaluator_batch_size, s.evaluator_calibration_bins, s.evaluator_robustness_rows,
                          s.evaluator_robustness_seed, s.evaluator_latency_rows,
                          latency_repeats=s.evaluator_latency_repeats)

    def work_dir(self, eval_id: str) -> Path:
        """A scratch folder for one evaluation's fetched adapters."""
        return self.settings.state_dir / "evaluator" / "work" / eval_id


@dataclass(frozen=True)
class Request:
    eval_id: str
    run: ev.RunFinished
    goal: Goal | None


def load_request(store: Store, job: Job) -> Request:
    """The run and goal a job evaluates."""
    payload = json.loads(job.payload)

    def read(s: Session) -> Request:
        row = s.get(RequestRow, payload["run_id"])
        if row is None:
            raise NotFound(f"no evaluation request for run {payload['run_id']}")
        run = ev.RunFinished.FromString(row.run_finished)
        return Request(row.eval_id, run, goal_by_version(s, row.goal_version))

    return store.run(read)


def identity_of(req: Request) -> Identity:
    """The ids and digests an evaluation is about."""
    run = req.run
    return Identity(req.eval_id, run.run_id, run.goal_name, run.goal_version, run.dataset_name, run.dataset_version,
                    run.base_model, run.method, run.adapter.digest, run.eval_data.digest,
                    datetime.now(UTC).isoformat(timespec="seconds"))


def _champion(deps: EvalDeps, goal: Goal, work: Path) -> ChampionModel | None:
    def read(s: Session) -> tuple[str, AdapterRow | None] | None:
        row = s.get(ChampionRow, goal.name)
        return (row.digest, s.get(AdapterRow, row.digest)) if row and row.digest else None

    found = deps.store.run(read)
    if found is None:
        return None
    digest, where = found
    if where is None:
        return ChampionModel(digest, None, "its location was never announced")
    try:
        ref = ev.ArtifactRef(digest=digest, uri=where.uri, media_type=where.media_type)
        folder = deps.blobs.fetch_tree(ref, work / "champion")
        return ChampionModel(digest, deps.load_scorer(goal.base_model, folder, digest))
    except Exception as err:  # noqa: BLE001 - vs_champion then fails closed with this reason
        log.warning("champion %s could not be loaded: %s", digest, err)
        return ChampionModel(digest, None, f"{type(err).__name__}: {err}")


def _store_reports(deps: EvalDeps, report: EvalReport, scoring: Scoring | None, texts: tuple[str, ...],
                   labels: list[str], out: ev.EvalOutcome) -> None:
    out.report_json.CopyFrom(deps.blobs.put_bytes(report_json(report), "application/json"))
    out.report_html.CopyFrom(deps.blobs.put_bytes(report_html.render(report), "text/html"))
    if scoring is not None:
        s = scoring.scored
        table = reference_table(s.probs, s.embeddings, s.token_counts, texts, labels)
        ref = deps.blobs.put_bytes(parquet.reference_parquet(table), parquet.PARQUET)
        out.reference.CopyFrom(codec.reference_message(ref, table.rows))


def record(deps: EvalDeps, out: ev.EvalOutcome) -> None:
    """Keep the decision for `tuneline evals` (an upsert: a re-executed job writes the same row)."""
    def write(s: Session) -> None:
        s.execute(sa.delete(EvalRow).where(EvalRow.eval_id == out.eval_id))
        s.add(EvalRow(eval_id=out.eval_id, run_id=out.run_id, goal_name=out.goal_name, adapter_digest=out.adapter.digest,
                      passed=out.passed, summary=out.summary, outcome=out.SerializeToString(),
                      report_json_uri=out.report_json.uri, report_html_uri=out.report_html.uri, created_at=utcnow()))

    deps.store.run(write)


def refusal(deps: EvalDeps, req: Request, reason: str) -> list[Outgoing]:
    """eval.failed for a run that must not be evaluated; every criterion names the reason."""
    ident = identity_of(req)
    decision = (gate.refused(req.goal.acceptance, reason) if req.goal
                else gate.GateDecision(False, (), f"refused: {reason}"))
    out = codec.outcome(ident, req.run, decision)
    if req.goal:
        report = EvalReport(ident, _empty_findings(reason), decision)
        out.report_json.CopyFrom(deps.blobs.put_bytes(report_json(report), "application/json"))
        out.report_html.CopyFrom(deps.blobs.put_bytes(report_html.render(report), "text/html"))
    record(deps, out)
    log.warning("eval %s of run %s refused: %s", ident.eval_id, req.run.run_id, reason)
    return _decided(out)


def _decided(out: ev.EvalOutcome) -> list[Outgoing]:
    """The decision event, counted in the gate's metrics."""
    instruments.decided(out)
    return [codec.decision_event(out)]


def _empty_findings(reason: str) -> Findings:
    return Findings(None, None, None, None, None, None, None, "", (f"refused: {reason}",))


def execute(job: Job, ctx: JobContext, deps: EvalDeps) -> list[Outgoing]:
    """Evaluate one run and return its single decision event."""
    req = load_request(deps.store, job)
    if req.goal is None:
        return refusal(deps, req, f"goal {req.run.goal_name} {req.run.goal_version} is unknown")
    work = deps.work_dir(req.eval_id)
    shutil.rmtree(work, ignore_errors=True)
    ctx.progress(0.05, "verifying the adapter and the eval split")
    try:
        folder = deps.blobs.fetch_tree(req.run.adapter, work / "candidate")
        signature = bundle_of(deps.blobs, req.run.adapter_signature, req.run.adapter.digest)
        verify_adapter_signature(deps.settings, folder, signature, req.run.adapter.digest)
        candidate = deps.load_scorer(req.run.base_model or req.goal.base_model, folder, req.run.adapter.digest)
        t = req.goal.task
        data = parquet.read_eval_data(deps.blobs.get_bytes(req.run.eval_data), req.run.text_field or t.text_field,
                                      req.run.label_field or t.label_field, req.run.slice_field or t.slice_field)
    except PermanentError as err:
        return refusal(deps, req, f"{type(err).__name__}: {err}")
    ctx.progress(0.2, f"evaluating {len(data.texts)} rows")
    report, scoring = evaluate(identity_of(req), req.goal, data, candidate, _champion(deps, req.goal, work), deps.config,
                               guarantee_of(req.run.metrics))
    ctx.progress(0.9, "writing the reports")
    out = codec.report_outcome(report, req.run)
    _store_reports(deps, report, scoring, data.texts, list(candidate.labels), out)
    record(deps, out)
    shutil.rmtree(work, ignore_errors=True)
    log.info("eval %s of run %s: %s", req.eval_id, req.run.run_id, report.decision.summary)
    return _decided(out)


def on_failure(job: Job, err: BaseException, deps: EvalDeps) -> list[Outgoing]:
    """Fail closed when the job itself failed for good: eval.failed with the error."""
    try:
        req = load_request(deps.store, job)
    except Exception:
        log.exception("evaluation job %s failed and its request is unreadable", job.id)
        return []
    return refusal(deps, req, f"evaluation failed: {type(err).__name__}: {err}")
