"""The monitor's gRPC Registry service: goals, datasets, runs, evaluations, models, run comparison.

Served beside the Query service on the monitor's address, behind the same interceptor (the `audit`
scope) and TLS; every answer is limited to the goals of the caller's tenant (services.monitor.registry).
"""

from __future__ import annotations

import io
import json
import math
from typing import Any, NoReturn

import grpc
from tuneline.events.v1 import events_pb2 as ev
from tuneline.monitor.v1 import registry_pb2 as r
from tuneline.monitor.v1 import registry_pb2_grpc as r_grpc

from services.kernel.blobs import BlobStore
from services.kernel.errors import TunelineError
from services.kernel.goals import latest_goal
from services.kernel.grpc_auth import current_principal
from services.kernel.store import Store
from services.monitor import registry
from services.monitor.domain import compare

MAX_ROWS = 500


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("grpc's ServicerContext.abort always raises")


class RegistryServicer(r_grpc.RegistryServicer):
    """Answers registry questions from the ledger in the monitor's store."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store, self.blobs = store, blobs

    def _visible(self, session: Any) -> registry.Visible:
        principal = current_principal()
        if principal is None or principal.tenant == "*":
            return lambda _goal: True
        cache: dict[str, bool] = {}

        def visible(goal: str) -> bool:
            if goal not in cache:
                found = latest_goal(session, goal) if goal else None
                cache[goal] = found is not None and found.tenant == principal.tenant
            return cache[goal]
        return visible

    def ListGoals(self, request: r.ListGoalsRequest, context: grpc.ServicerContext) -> r.ListGoalsResponse:
        with self.store.session() as s:
            return r.ListGoalsResponse(goals=registry.goals(s, self._visible(s), request.name))

    def ListDatasets(self, request: r.ListDatasetsRequest, context: grpc.ServicerContext) -> r.ListDatasetsResponse:
        with self.store.session() as s:
            return r.ListDatasetsResponse(datasets=registry.datasets(s, self._visible(s), request.name)[:MAX_ROWS])

    def ListRuns(self, request: r.ListRunsRequest, context: grpc.ServicerContext) -> r.ListRunsResponse:
        with self.store.session() as s:
            found = registry.runs(s, self._visible(s), request.goal, request.run_id)[: min(request.limit or 50, MAX_ROWS)]
        if request.run_id and len(found) == 1 and found[0].envelope.digest:
            found[0].envelope_json = self._envelope(found[0], context)
        return r.ListRunsResponse(runs=found)

    def ListEvals(self, request: r.ListEvalsRequest, context: grpc.ServicerContext) -> r.ListEvalsResponse:
        with self.store.session() as s:
            found = registry.evals(s, self._visible(s), request.goal, request.id)
        return r.ListEvalsResponse(evals=found[: min(request.limit or 20, MAX_ROWS)])

    def ListModels(self, request: r.ListModelsRequest, context: grpc.ServicerContext) -> r.ListModelsResponse:
        if request.stage and request.stage not in registry.STAGES:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"unknown stage {request.stage!r}: one of {', '.join(registry.STAGES)}")
        with self.store.session() as s:
            return r.ListModelsResponse(models=registry.models(s, self._visible(s), request.goal, request.stage)[:MAX_ROWS])

    def _envelope(self, run: r.RunRecord, context: grpc.ServicerContext) -> str:
        try:
            return registry.envelope_json(self.blobs.get_bytes(run.envelope))
        except (TunelineError, ValueError) as err:
            _abort(context, grpc.StatusCode.DATA_LOSS, f"the envelope of run {run.run_id} does not verify: {err}")

    def _one_run(self, s: Any, ident: str, context: grpc.ServicerContext) -> r.RunRecord:
        found = [x for x in registry.runs(s, self._visible(s), run_id=ident) if x.status == "succeeded"] if ident else []
        if len(found) != 1:
            what = "no finished run" if not found else f"{len(found)} runs"
            _abort(context, grpc.StatusCode.NOT_FOUND if not found else grpc.StatusCode.INVALID_ARGUMENT,
                   f"{what} matches {ident!r}" + (": give more of the id" if found else ""))
        return found[0]

    def CompareRuns(self, request: r.CompareRunsRequest, context: grpc.ServicerContext) -> r.CompareRunsResponse:
        with self.store.session() as s:
            run_a, run_b = self._one_run(s, request.a, context), self._one_run(s, request.b, context)
            visible = self._visible(s)
            eval_a = next((e.outcome for e in registry.evals(s, visible, ident=run_a.run_id) if e.outcome.run_id == run_a.run_id), None)
            eval_b = next((e.outcome for e in registry.evals(s, visible, ident=run_b.run_id) if e.outcome.run_id == run_b.run_id), None)
        problems: list[str] = []
        env_a, env_b = (json.loads(self._envelope(x, context)) for x in (run_a, run_b))
        reports = [self._report(o, problems) for o in (eval_a, eval_b)]
        found = compare.compare(env_a, env_b, _outcome(eval_a), _outcome(eval_b), reports[0], reports[1],
                                request.max_examples or 50)
        texts = self._texts(run_a, problems) if found.changed else []
        if eval_a is None or eval_b is None:
            problems.append(f"run {(run_a if eval_a is None else run_b).run_id} has no evaluation in the ledger yet")
        return r.CompareRunsResponse(
            run_a=run_a, run_b=run_b, eval_a=eval_a.eval_id if eval_a else "", eval_b=eval_b.eval_id if eval_b else "",
            envelope=[r.EnvelopeChange(section=c.section, path=c.path, a=c.a, b=c.b) for c in found.envelope],
            metrics=[_delta(d) for d in found.metrics], labels=[_delta(d) for d in found.labels],
            slices=[_delta(d) for d in found.slices],
            criteria=[r.CriterionDelta(name=c.name, a=c.a, b=c.b, delta=c.b - c.a, a_passed=c.a_passed, b_passed=c.b_passed,
                                       comparator=c.comparator, threshold=c.threshold) for c in found.criteria],
            paired=r.PairedTest(paired=found.paired.paired, reason=found.paired.reason, test="mcnemar_exact",
                                rows=found.paired.rows, only_a_correct=found.paired.only_a, only_b_correct=found.paired.only_b,
                                p_value=found.paired.p_value, accuracy_a=found.paired.accuracy_a,
                                accuracy_b=found.paired.accuracy_b),
            changed=[r.ChangedExample(row=c.row, truth=c.truth, a=c.a, b=c.b, text=texts[c.row] if c.row < len(texts) else "")
                     for c in found.changed],
            changed_total=found.changed_total, problems=problems)

    def _report(self, outcome: ev.EvalOutcome | None, problems: list[str]) -> dict[str, Any] | None:
        if outcome is None or not outcome.report_json.digest:
            return None
        try:
            doc: dict[str, Any] = json.loads(self.blobs.get_bytes(outcome.report_json))
            return doc
        except (TunelineError, ValueError) as err:
            problems.append(f"the report of eval {outcome.eval_id} could not be read: {err}")
            return None

    def _texts(self, run: r.RunRecord, problems: list[str]) -> list[str]:
        """The eval split's texts (both runs were evaluated on the same rows when answers are paired)."""
        import pyarrow.parquet as pq

        with self.store.session() as s:
            finished = [rec.message for rec in registry.records(s, ("run.finished",))
                        if isinstance(rec.message, ev.RunFinished) and rec.message.run_id == run.run_id]
        if not finished or not finished[-1].eval_data.digest:
            return []
        m = finished[-1]
        try:
            table = pq.read_table(io.BytesIO(self.blobs.get_bytes(m.eval_data)), columns=[m.text_field or "text"])
        except (TunelineError, OSError, ValueError, KeyError) as err:
            problems.append(f"the eval split of run {run.run_id} could not be read for the changed answers' texts: {err}")
            return []
        return [str(t) for t in table.column(0).to_pylist()]


def _outcome(o: ev.EvalOutcome | None) -> dict[str, Any]:
    if o is None:
        return {}
    return {"metrics": dict(o.metrics), "criteria": [{"name": c.name, "value": c.value, "threshold": c.threshold,
                                                      "comparator": c.comparator, "passed": c.passed} for c in o.criteria]}


def _delta(d: compare.Delta) -> r.Delta:
    return r.Delta(name=d.name, a=d.a, b=d.b, delta=d.delta if math.isfinite(d.delta) else math.nan)
