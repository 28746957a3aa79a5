"""The training job: one run from queued to run.finished, resumable after a crash.

A job re-executed after the trainer died keeps its run id, so Ray Train restores that run's last
checkpoint. run.finished is returned to the job runner, which commits it with the job's final
status in one transaction: exactly one run.finished per run, however often the job was resumed.

The adapter is signed (`services.kernel.artifact_signing`: OpenSSF model-signing with the trainer's
artifact key) and the Sigstore bundle stored beside it as its own blob, named by
`RunFinished.adapter_signature`: the adapter's tree and digest stay exactly what training wrote.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.artifact_signing import BUNDLE_MEDIA_TYPE, sign_adapter
from services.kernel.blobs import BlobStore
from services.kernel.errors import PermanentError
from services.kernel.events import Outgoing
from services.kernel.goal import goal_from_json
from services.kernel.jobs import Job, JobContext
from services.kernel.modeling import adapter_files
from services.kernel.outbox import emit
from services.kernel.store import Store, utcnow
from services.trainer import instruments, training
from services.trainer import store as tables
from services.trainer.domain.runs import FAILED, RUNNING, SUCCEEDED, TrainRequest, request_from_json
from services.trainer.settings import TrainerSettings

log = logging.getLogger(__name__)
ADAPTER_MEDIA_TYPE = "application/vnd.tuneline.adapter"
ENVELOPE_MEDIA_TYPE = "application/vnd.tuneline.envelope+json"


class TrainingJob:
    """Executes `train` jobs: fit under Ray, store the adapter and envelope, report the run."""

    def __init__(self, settings: TrainerSettings, store: Store, blobs: BlobStore) -> None:
        self.settings, self.store, self.blobs = settings, store, blobs

    def execute(self, job: Job, ctx: JobContext) -> list[Outgoing]:
        """Run one training job to its run.finished event."""
        request = request_from_json(job.payload)
        goal = goal_from_json(request.goal_json)
        with tempfile.TemporaryDirectory(prefix="tuneline-run-") as scratch:
            ctx.progress(0.01, "fetching data")
            prepared = training.prepare(self.settings, self.blobs, goal, request.dataset, Path(scratch))
            envelope_ref = self.blobs.put_bytes(prepared.envelope.to_json(), ENVELOPE_MEDIA_TYPE)
            self._started(request, job.attempts, prepared.workers, prepared.cfg.use_gpu)
            ctx.progress(0.05, f"training on {prepared.workers} worker(s)")
            done = training.fit(self.settings, prepared, request.run_id, Path(scratch) / "adapter")
            instruments.run_trained(goal.name, done)
            if done.outcome.status != SUCCEEDED:
                raise PermanentError(done.outcome.reason)
            assert done.outcome.adapter_dir is not None  # a succeeded outcome always carries its adapter folder
            files: list[tuple[str, str | Path]] = list(adapter_files(done.outcome.adapter_dir))
            adapter_ref = self.blobs.put_tree(files, ADAPTER_MEDIA_TYPE)
            signature_ref = self.blobs.put_bytes(sign_adapter(self.settings, done.outcome.adapter_dir), BUNDLE_MEDIA_TYPE)
        finished = _run_finished(request, done, adapter_ref, signature_ref, envelope_ref, job.attempts)
        self._record(request.run_id, finished)
        instruments.run_state(goal.name, "finished")
        return [Outgoing(finished, subject=goal.name)]

    def on_failure(self, job: Job, err: BaseException) -> list[Outgoing]:
        """The run failed for good: record it and emit one run.finished(failed) with the reason."""
        request = request_from_json(job.payload)
        goal = goal_from_json(request.goal_json)
        finished = ev.RunFinished(
            run_id=request.run_id, goal_name=goal.name, goal_version=goal.version,
            dataset_name=request.dataset.name, dataset_version=request.dataset.version, status=FAILED,
            failure_reason=str(err) or type(err).__name__, base_model=goal.base_model, method=goal.approach.method,
            attempts=job.attempts)
        self._record(request.run_id, finished)
        instruments.run_state(goal.name, "failed")
        return [Outgoing(finished, subject=goal.name)]

    def _started(self, request: TrainRequest, attempt: int, workers: int, use_gpu: bool) -> None:
        goal = goal_from_json(request.goal_json)
        started = ev.RunStarted(run_id=request.run_id, goal_name=goal.name, goal_version=goal.version,
                                dataset_name=request.dataset.name, dataset_version=request.dataset.version,
                                attempt=attempt, world_size=workers, use_gpu=use_gpu)

        def mark(session: Session) -> None:
            run = session.get(tables.RunRow, request.run_id)
            assert run is not None  # the handler inserted the run's row before queueing its job
            run.status, run.attempts = RUNNING, attempt
            emit(session, Outgoing(started, subject=goal.name))

        self.store.run(mark)
        instruments.run_state(goal.name, "started")

    def _record(self, run_id: str, finished: ev.RunFinished) -> None:
        def record(session: Session) -> None:
            run = session.get(tables.RunRow, run_id)
            assert run is not None  # the handler inserted the run's row before queueing its job
            run.status, run.reason, run.finished_at = finished.status, finished.failure_reason, utcnow()
            run.adapter_digest, run.adapter_uri = finished.adapter.digest, finished.adapter.uri
            run.envelope_digest, run.envelope_uri = finished.envelope_digest, finished.envelope.uri
            run.metrics_json = json.dumps(dict(finished.metrics), sort_keys=True)
            run.curve_json = json.dumps([_point_json(p) for p in finished.curve])
            run.wall_seconds, run.attempts = finished.wall_seconds, finished.attempts

        self.store.run(record)


def _point_json(p: ev.CurvePoint) -> dict[str, float]:
    return {"step": p.step, "epoch": p.epoch, "loss": p.loss, "learning_rate": p.learning_rate, "grad_norm": p.grad_norm}


def _run_finished(request: TrainRequest, done: training.FinishedRun, adapter: ev.ArtifactRef, signature: ev.ArtifactRef,
                  envelope: ev.ArtifactRef, attempts: int) -> ev.RunFinished:
    goal, ds, out = done.prepared.goal, request.dataset, done.outcome
    metrics = {**out.metrics, "steps": float(out.steps), "train_step_seconds": out.stats.get("step_seconds", 0.0),
               "resumed_from_step": out.stats.get("resumed_from_step", 0.0),
               "real_token_fraction": out.stats.get("real_tokens", 0.0) / max(1.0, out.stats.get("padded_tokens", 0.0))}
    return ev.RunFinished(
        run_id=request.run_id, goal_name=goal.name, goal_version=goal.version, dataset_name=ds.name,
        dataset_version=ds.version, status=SUCCEEDED, adapter=adapter, adapter_signature=signature, envelope=envelope,
        envelope_digest=done.prepared.envelope.digest, curve=[ev.CurvePoint(**p) for p in out.curve],
        wall_seconds=done.wall_seconds, metrics=metrics,
        train_data=ev.ArtifactRef(digest=ds.train.digest, uri=ds.train.uri, media_type=ds.train.media_type),
        eval_data=ev.ArtifactRef(digest=ds.eval.digest, uri=ds.eval.uri, media_type=ds.eval.media_type),
        base_model=goal.base_model, method=goal.approach.method, labels=list(ds.labels),
        text_field=ds.text_field, label_field=ds.label_field, slice_field=ds.slice_field, attempts=attempts)
