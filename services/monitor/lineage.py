"""Lineage: from a request id, adapter digest, run id or dataset version back to the dataset's publication.

Every step is read from the ledger (its payload verified against the recorded digest) and every
artifact on it is re-verified against the artifact store, so an altered byte anywhere on the chain
shows as a problem rather than a silently wrong answer.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import cast

import sqlalchemy as sa
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev
from tuneline.monitor.v1 import query_pb2 as q

from services.kernel.blobs import BlobStore
from services.kernel.errors import NotFound, TunelineError
from services.kernel.events import EVENT_TYPES
from services.kernel.ids import sha256_bytes
from services.kernel.signing import SIGNER_HEADER
from services.kernel.store import Store
from services.monitor.store import LedgerRow, LineageKey

TREE = "application/vnd.tuneline.tree"
_KINDS = ("request", "adapter", "run", "dataset")


def _rows(store: Store, key: str) -> list[LedgerRow]:
    with store.session() as s:
        seqs = sa.select(LineageKey.seq).where(LineageKey.key == key)
        return list(s.execute(sa.select(LedgerRow).where(LedgerRow.seq.in_(seqs)).order_by(LedgerRow.seq)).scalars())


def _decode(row: LedgerRow, problems: list[str]) -> tuple[str, Message]:
    if row.purged_by is None and sha256_bytes(row.payload) != row.payload_digest:
        problems.append(f"ledger record {row.seq} ({row.ce_type}): payload does not match its digest")
    name = row.ce_type.removeprefix("tuneline.").removesuffix(".v1")
    message = EVENT_TYPES[name]()
    message.ParseFromString(row.payload)
    return name, message


def _check(blobs: BlobStore, name: str, ref: ev.ArtifactRef, problems: list[str]) -> q.ArtifactCheck:
    check = q.ArtifactCheck(name=name, digest=ref.digest, uri=ref.uri, verified=False)
    try:
        if ref.media_type == TREE or "trees/" in ref.uri:
            with tempfile.TemporaryDirectory() as tmp:
                blobs.fetch_tree(ref, tmp)
        else:
            blobs.get_bytes(ref)
        check.verified = True
    except TunelineError as err:
        check.error = str(err)
        problems.append(f"{name} {ref.digest}: {err}")
    return check


# A person's decisions on a rollout, and the field that names who made each.
PEOPLES_DECISIONS = {"deployment.approved": "approved_by", "deployment.rejected": "rejected_by",
                     "deployment.held": "held_by", "deployment.resumed": "resumed_by"}


def signer_of(row: LedgerRow) -> str:
    """The identity that signed the recorded event (its `tuneline-signer` header as received), or ""."""
    try:
        headers = json.loads(row.headers_json)
    except json.JSONDecodeError:
        return ""
    return next((h.get("v", "") for h in headers if isinstance(h, dict) and h.get("k") == SIGNER_HEADER), "")


def _step(stage: str, row: LedgerRow, summary: str, facts: dict[str, str], checks: list[q.ArtifactCheck]) -> q.LineageStep:
    facts = {**facts, "signed_by": signer_of(row)}
    return q.LineageStep(stage=stage, event_type=row.ce_type, event_id=row.ce_id, summary=summary,
                         facts={k: str(v) for k, v in facts.items() if v}, artifacts=checks)


class Lineage:
    """Builds the chain behind an id from the ledger and verifies every artifact on it."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store, self.blobs = store, blobs

    def of(self, ident: str) -> q.LineageResponse:
        """The lineage of a request id, adapter digest, run id or dataset version (NotFound otherwise)."""
        for kind in _KINDS:
            rows = _rows(self.store, f"{kind}:{ident}")
            if rows:
                return self._build(ident, kind, rows)
        raise NotFound(f"no request, adapter, run or dataset version {ident!r} in the ledger",
                       hint="ids are exact: a request id, a sha256: adapter digest, a run id or a dataset version")

    def _build(self, ident: str, kind: str, rows: list[LedgerRow]) -> q.LineageResponse:
        problems: list[str] = []
        steps: list[q.LineageStep] = []
        events = [_decode(r, problems) + (r,) for r in rows]
        adapter = ident if kind == "adapter" else ""
        dataset, run = (ident if kind == "dataset" else ""), (ident if kind == "run" else "")
        for name, message, row in events:
            if name == "inference.logged":
                m = cast(ev.InferenceLogged, message)  # the record's ce_type names its message class
                adapter, dataset = m.adapter_digest, m.dataset_version
                steps.append(_step("prediction", row, f"{m.label} ({m.confidence:.2f}) by {m.variant}",
                                   {"adapter": m.adapter_digest, "deployment": m.deployment_id, "goal": m.goal_name,
                                    "latency_ms": f"{m.latency_ms:.1f}"}, []))
            elif name == "feedback.recorded":  # the ground truth that came back for the prediction
                f = cast(ev.FeedbackRecorded, message)
                steps.append(_step("feedback", row, f"true label {f.label or f.reference} ({f.source})",
                                   {"recorded_by": f.recorded_by, "feedback_id": f.feedback_id, "note": f.note}, []))
        if adapter:
            steps = self._adapter_steps(adapter, problems) + steps
            run = run or next((s.facts["run_id"] for s in steps if s.stage == "evaluation" and "run_id" in s.facts), "")
        if run:
            run_steps = self._run_steps(run, problems)
            dataset = dataset or next((s.facts["dataset_version"] for s in run_steps if "dataset_version" in s.facts), "")
            steps = run_steps + steps
        if dataset:
            steps = self._dataset_steps(dataset, problems) + steps
        complete = any(s.stage == "published" for s in steps)
        if not complete:
            problems.append("the chain does not reach a dataset publication")
        return q.LineageResponse(id=ident, kind=kind, steps=steps, complete=complete,
                                 verified=not problems, problems=problems)

    def _of_type(self, key: str, names: tuple[str, ...], problems: list[str]) -> Iterator[tuple[str, Message, LedgerRow]]:
        """The records under `key` whose event is one of `names` (its message is of that event's class)."""
        for row in _rows(self.store, key):
            name, m = _decode(row, problems)
            if name in names:
                yield name, m, row

    def _adapter_steps(self, adapter: str, problems: list[str]) -> list[q.LineageStep]:
        steps: list[q.LineageStep] = []
        for _name, m, row in self._of_type(f"adapter:{adapter}", ("eval.passed", "eval.failed"), problems):
            o = cast("ev.EvalPassed | ev.EvalFailed", m).outcome
            checks = [_check(self.blobs, n, r, problems) for n, r in (("report_json", o.report_json), ("report_html", o.report_html),
                                                                        ("reference", o.reference.table)) if r.digest]
            steps.append(_step("evaluation", row, f"{'passed' if o.passed else 'failed'}: {o.summary}",
                               {"eval_id": o.eval_id, "run_id": o.run_id, "goal": o.goal_name,
                                "decision": "passed" if o.passed else "failed"}, checks))
        deploy_names = ("deployment.started", "deployment.promoted", "deployment.rolled_back", *PEOPLES_DECISIONS)
        for name, message, row in self._of_type(f"adapter:{adapter}", deploy_names, problems):
            m = cast("ev.DeploymentStarted | ev.DeploymentPromoted | ev.DeploymentRolledBack", message)
            facts = {"deployment_id": m.deployment_id, "goal": m.goal_name}
            if name in PEOPLES_DECISIONS:  # who decided, and why: the credential's principal the deployer recorded
                decision = cast("ev.DeploymentApproved | ev.DeploymentRejected | ev.DeploymentHeld | ev.DeploymentResumed", message)
                facts |= {"by": getattr(decision, PEOPLES_DECISIONS[name]), "reason": decision.reason}
            steps.append(_step("deployment", row, name.split(".")[1], facts, []))
        return steps

    def _run_steps(self, run: str, problems: list[str]) -> list[q.LineageStep]:
        steps: list[q.LineageStep] = []
        for _name, message, row in self._of_type(f"run:{run}", ("run.finished",), problems):
            m = cast(ev.RunFinished, message)
            checks = [_check(self.blobs, n, r, problems) for n, r in (("adapter", m.adapter), ("envelope", m.envelope)) if r.digest]
            steps.append(_step("run", row, f"run {m.run_id} {m.status} ({m.method})",
                               {"run_id": m.run_id, "goal": m.goal_name, "dataset_version": m.dataset_version,
                                "envelope": m.envelope_digest}, checks))
        return steps

    def _dataset_steps(self, version: str, problems: list[str]) -> list[q.LineageStep]:
        steps: list[q.LineageStep] = []
        for _name, message, row in self._of_type(f"dataset:{version}", ("dataset.registered",), problems):
            m = cast(ev.DatasetRegistered, message)
            checks = [_check(self.blobs, n, r, problems) for n, r in (("train", m.train), ("eval", m.eval),
                                                                        ("certificate", m.certificate_ref)) if r.digest]
            steps.append(_step("registered", row, f"{m.dataset_name} {m.train_rows}+{m.eval_rows} rows",
                               {"dataset_version": m.dataset_version, "published_event_id": m.published_event_id}, checks))
            for _, published, prow in self._of_type(f"event:{m.published_event_id}", ("dataset.published",), problems):
                p = cast(ev.DatasetPublished, published)
                steps.insert(0, _step("published", prow, f"{p.dataset_name} by {p.publisher or 'unknown'}",
                                      {"publisher": p.publisher, "source": p.uri}, []))
        return steps
