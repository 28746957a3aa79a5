"""The ingest job: check the URI, run the gates, store snapshots, and register or reject.

A job re-executed after a crash starts over in a fresh work folder (reading is the only costly
step and has no useful checkpoint); exactly-once comes from the job's result committing with its
events, and from the registration row: a re-run of the same event re-emits its own registration,
while a different event with the same bytes finds the version already registered and emits nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.ingest import instruments
from services.ingest.certify import certify
from services.ingest.domain.certificate import GateOutcome, failed, summary
from services.ingest.domain.rows import FieldSpec, Limits
from services.ingest.domain.uri import check_uri
from services.ingest.plan import Certified, Plan, Policy
from services.ingest.settings import IngestSettings
from services.ingest.store import RegistrationRow
from services.kernel.blobs import BlobStore
from services.kernel.errors import InvalidInput, NotFound
from services.kernel.events import Outgoing
from services.kernel.goal import Goal
from services.kernel.goals import goal_for_dataset
from services.kernel.ids import canonical_json, digest_json
from services.kernel.jobs import Job, JobContext
from services.kernel.signing import pseudonym_key
from services.kernel.store import Store, utcnow

log = logging.getLogger(__name__)
PARQUET = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class IngestDeps:
    """What the ingest job needs."""

    store: Store
    blobs: BlobStore
    settings: IngestSettings


def policy_of(settings: IngestSettings) -> Policy:
    """The gates' limits from the settings."""
    limits = Limits(settings.max_text_bytes, settings.max_label_bytes)
    return Policy(limits, settings.max_bad_row_fraction, settings.near_duplicate_threshold, settings.chunk_rows, settings.max_examples)


def execute(job: Job, ctx: JobContext, deps: IngestDeps) -> Iterable[Outgoing]:
    """Ingest one published dataset; returns dataset.registered, dataset.rejected, or nothing (same bytes again)."""
    payload = json.loads(job.payload)
    published = ev.DatasetPublished.FromString(base64.b64decode(payload["published"]))
    event_id = payload["event_id"]
    work = deps.settings.path("work", "ingest", job.id)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        return _ingest(published, event_id, ctx, deps, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ingest(published: ev.DatasetPublished, event_id: str, ctx: JobContext, deps: IngestDeps, work: Path) -> list[Outgoing]:
    try:
        plan = _plan(published, deps, work)
    except (InvalidInput, NotFound) as err:
        gate = GateOutcome("source", False, f"{err} ({err.hint})" if err.hint else str(err))
        return [_rejected(published, event_id, [gate])]
    result = certify(plan, policy_of(deps.settings), work, ctx.progress)
    if not result.passed:
        log.info("dataset %s rejected: %s", published.dataset_name, summary(result.certificate))
        return [_rejected(published, event_id, result.certificate)]
    return _register(published, event_id, plan, result, deps)


def _goal(deps: IngestDeps, name: str) -> Goal | None:
    with deps.store.session() as s:
        return goal_for_dataset(s, name)


def _history(deps: IngestDeps, name: str) -> list[RegistrationRow]:
    with deps.store.session() as s:
        return list(s.scalars(sa.select(RegistrationRow).where(RegistrationRow.dataset_name == name)))


def _plan(p: ev.DatasetPublished, deps: IngestDeps, work: Path) -> Plan:
    """Everything the gates need: checked locations, fields, the goal's split and PII policy, history."""
    if not p.dataset_name.strip():
        raise InvalidInput("the event has no dataset_name", hint="publish with --name")
    s = deps.settings
    roots, schemes, denied = s.data_roots(), s.allowed_url_schemes, s.denied_data_roots()
    source = check_uri(p.uri, roots, schemes, denied)
    eval_source = check_uri(p.eval_uri, roots, schemes, denied) if p.eval_uri else None
    goal = _goal(deps, p.dataset_name)
    task = goal.task if goal else None
    slice_values = (goal.data.slice_values if goal else None) or "keep"
    fields = FieldSpec(
        p.text_field or (task.text_field if task else "text"),
        p.label_field or (task.label_field if task else "label"),
        "" if slice_values == "drop" else p.slice_field or ((task.slice_field or "") if task else ""),
    )
    history = _history(deps, p.dataset_name)
    known = sorted({label for r in history for label in json.loads(r.labels_json)})
    priors = tuple(_fetch_eval(deps, r, work / f"prior-{i}.parquet") for i, r in enumerate(history))
    return Plan(
        p.dataset_name, source, eval_source, p.format, fields,
        goal.data.eval_fraction if goal else s.eval_fraction, goal.data.seed if goal else s.split_seed,
        goal.data.pii if goal else s.pii_action,
        goal.data.min_examples_per_label if goal else s.min_examples_per_label,
        tuple(known), priors, slice_values,
        pseudonym_key(s) if slice_values == "hash" and fields.slice else b"",
    )


def _fetch_eval(deps: IngestDeps, row: RegistrationRow, dest: Path) -> Path:
    registered = ev.DatasetRegistered.FromString(row.registered)
    return deps.blobs.fetch_file(registered.eval, dest)


def _gate_pb(g: GateOutcome) -> ev.GateResult:
    return ev.GateResult(gate=g.gate, passed=g.passed, reason=g.reason, counts=g.counts, examples=list(g.examples))


def _rejected(p: ev.DatasetPublished, event_id: str, certificate: list[GateOutcome]) -> Outgoing:
    instruments.certified(certificate)
    msg = ev.DatasetRejected(
        dataset_name=p.dataset_name, source_uri=p.uri, publisher=p.publisher,
        failed_gates=[_gate_pb(g) for g in failed(certificate)], certificate=[_gate_pb(g) for g in certificate],
        published_event_id=event_id, summary=summary(certificate),
    )
    return Outgoing(msg, p.dataset_name or "unnamed")


def _certificate_json(certificate: list[GateOutcome]) -> bytes:
    return canonical_json([{"gate": g.gate, "passed": g.passed, "reason": g.reason, "counts": g.counts, "examples": list(g.examples)}
                           for g in certificate])


def _register(p: ev.DatasetPublished, event_id: str, plan: Plan, result: Certified, deps: IngestDeps) -> list[Outgoing]:
    assert result.train is not None and result.eval is not None
    instruments.certified(result.certificate)
    train = deps.blobs.put_file(result.train, PARQUET)
    evalr = deps.blobs.put_file(result.eval, PARQUET)
    version = digest_json([train.digest, evalr.digest])
    msg = ev.DatasetRegistered(
        dataset_name=p.dataset_name, dataset_version=version, train=train, eval=evalr,
        train_rows=result.train_rows, eval_rows=result.eval_rows, labels=list(result.labels),
        certificate=[_gate_pb(g) for g in result.certificate],
        certificate_ref=deps.blobs.put_bytes(_certificate_json(result.certificate), "application/json"),
        source_uri=p.uri, publisher=p.publisher, lineage=dict(p.lineage), published_event_id=event_id,
        text_field="text", label_field="label", slice_field="slice" if plan.fields.slice else "",
    )
    if not _record(deps, msg, result.labels):
        log.info("dataset %s version %s is already registered; nothing to do", p.dataset_name, version)
        return []
    log.info("dataset %s registered as %s (%d train, %d eval rows)", p.dataset_name, version, result.train_rows, result.eval_rows)
    return [Outgoing(msg, p.dataset_name)]


def _record(deps: IngestDeps, msg: ev.DatasetRegistered, labels: tuple[str, ...]) -> bool:
    """Record the registration; True when this event should be emitted (new, or this event's own re-run)."""
    def record(s: Session) -> bool:
        found = s.get(RegistrationRow, (msg.dataset_name, msg.dataset_version))
        if found is not None:
            # Our own row from a run that crashed before its job committed: emit again (once).
            return found.published_event_id == msg.published_event_id
        s.add(RegistrationRow(
            dataset_name=msg.dataset_name, dataset_version=msg.dataset_version, published_event_id=msg.published_event_id,
            registered=msg.SerializeToString(), labels_json=json.dumps(list(labels)), created_at=utcnow(),
        ))
        return True

    try:
        return deps.store.run(record)
    except SqlIntegrityError:
        return False


def on_failure(job: Job, err: BaseException, deps: IngestDeps) -> Iterable[Outgoing]:
    """A job that failed for good still answers the publisher: a rejection naming the error."""
    published = ev.DatasetPublished.FromString(base64.b64decode(json.loads(job.payload)["published"]))
    gate = GateOutcome("ingest", False, f"ingest failed: {type(err).__name__}: {err}; publish again or contact the platform team")
    return [_rejected(published, json.loads(job.payload)["event_id"], [gate])]
