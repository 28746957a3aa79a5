"""Long work (training, evaluation, big ingests) as job rows, not blocked consumers.

A handler enqueues a job in its transaction and returns. A `JobRunner` thread in the same process
executes queued jobs; the job's final status and the events it produces commit in one transaction,
so a job yields its result events exactly once. A job found `running` at start-up belongs to a
process that died: it is executed again, and the executor resumes from its own checkpoints.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.kernel.errors import PermanentError
from services.kernel.events import Outgoing
from services.kernel.ids import uuid7
from services.kernel.outbox import emit
from services.kernel.retry import RetriesExhausted, RetryPolicy
from services.kernel.store import Store, jobs, utcnow
from services.kernel.telemetry import SPAN_JOB, continued_span

log = logging.getLogger(__name__)
# The runner's loop goes on through store failures (store.run already retried each one), backing off
# up to 30 s between rounds and escalating once after 5 failed rounds in a row.
RUNNER_RETRY = RetryPolicy(attempts=5, base_s=0.2, cap_s=30.0, retry_on=lambda _err: True)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


@dataclass(frozen=True)
class Job:
    """A unit of long work: what to do (payload JSON) and how often it was tried."""

    id: str
    kind: str
    key: str
    payload: str
    attempts: int
    traceparent: str


class JobContext:
    """What an executing job may report while it runs."""

    def __init__(self, store: Store, job: Job, stop: threading.Event) -> None:
        self._store, self.job, self.stop_requested = store, job, stop

    def progress(self, fraction: float, message: str = "") -> None:
        """Record how far the job is (0..1) and what it is doing."""
        jid = self.job.id
        self._store.run(lambda s: s.execute(
            jobs.update().where(jobs.c.id == jid).values(progress=max(0.0, min(1.0, fraction)), message=message[:500], updated_at=utcnow())
        ))


Executor = Callable[[Job, JobContext], Iterable[Outgoing]]
OnFailure = Callable[[Job, BaseException], Iterable[Outgoing]]


def enqueue_job(session: Session, kind: str, key: str, payload: str, traceparent: str = "") -> str:
    """Queue a job in the caller's transaction; the same (kind, key) is queued once. Returns its id."""
    found = session.execute(sa.select(jobs.c.id).where(jobs.c.kind == kind, jobs.c.key == key)).scalar()
    if found:
        return str(found)
    job_id, now = uuid7(), utcnow()
    session.execute(jobs.insert().values(
        id=job_id, kind=kind, key=key, payload=payload, status=QUEUED, attempts=0, progress=0.0, message="",
        error="", traceparent=traceparent, created_at=now, updated_at=now,
    ))
    return job_id


def job_status(session: Session, job_id: str) -> sa.Row[Any] | None:
    """A job's row (status, progress, message, error), or None."""
    return session.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()


class JobRunner:
    """Executes one kind of job, one at a time, on a background thread."""

    def __init__(self, store: Store, kind: str, execute: Executor, on_failure: OnFailure | None = None, max_attempts: int = 3) -> None:
        self.store, self.kind, self.execute = store, kind, execute
        self.on_failure = on_failure or (lambda _job, _err: ())
        self.max_attempts = max_attempts
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _claim(self) -> Job | None:
        def claim(s: Session) -> Job | None:
            # `running` first: a job interrupted by a crash resumes before new work starts.
            row = s.execute(
                sa.select(jobs).where(jobs.c.kind == self.kind, jobs.c.status.in_([RUNNING, QUEUED]))
                .order_by(jobs.c.status.desc(), jobs.c.created_at).limit(1)
            ).first()
            if row is None:
                return None
            s.execute(jobs.update().where(jobs.c.id == row.id).values(status=RUNNING, attempts=row.attempts + 1, updated_at=utcnow()))
            return Job(row.id, row.kind, row.key, row.payload, row.attempts + 1, row.traceparent)

        return self.store.run(claim)

    def run_once(self) -> bool:
        """Execute the next job if there is one; returns whether one ran."""
        job = self._claim()
        if job is None:
            return False
        with continued_span(SPAN_JOB.format(kind=self.kind), job.traceparent, **{"tuneline.job.id": job.id}):
            try:
                events = list(self.execute(job, JobContext(self.store, job, self._stop)))
            except Exception as err:  # noqa: BLE001 - recorded on the job, retried or failed for good
                self._failed(job, err)
                return True
            self._finish(job, SUCCEEDED, events, "")
        return True

    def _failed(self, job: Job, err: BaseException) -> None:
        if self._stop.is_set():
            log.info("job %s interrupted by shutdown; it resumes on restart", job.id)
            return
        final = isinstance(err, PermanentError) or job.attempts >= self.max_attempts
        log.error("job %s (%s) attempt %d failed: %s%s", job.id, self.kind, job.attempts, err, "" if final else "; retrying")
        if not final:
            self.store.run(lambda s: s.execute(jobs.update().where(jobs.c.id == job.id).values(status=QUEUED, error=str(err)[:4000])))
            return
        self._finish(job, FAILED, list(self.on_failure(job, err)), str(err))

    def _finish(self, job: Job, status: str, events: list[Outgoing], error: str) -> None:
        def finish(s: Session) -> None:
            s.execute(jobs.update().where(jobs.c.id == job.id).values(
                status=status, error=error[:4000], progress=1.0 if status == SUCCEEDED else 0.0, updated_at=utcnow()
            ))
            for out in events:
                emit(s, out)

        self.store.run(finish)

    def _escalate(self, gave_up: RetriesExhausted) -> None:
        # A job's own failures are handled in run_once; this is the store refusing claims or results.
        log.critical("job runner %s: the store keeps failing (%s); jobs wait in it until it recovers", self.kind, gave_up)

    def _loop(self) -> None:
        while not self._stop.is_set():
            ran = RUNNER_RETRY.keep_trying(self.run_once, escalate=self._escalate, stop=self._stop,
                                           what=f"job runner {self.kind}")
            if not ran:
                self.wake.wait(0.2)
                self.wake.clear()

    def start(self) -> None:
        """Run jobs in a background thread until stop()."""
        self._thread = threading.Thread(target=self._loop, name=f"jobs-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the running job to stop (ctx.stop_requested) and wait for the thread."""
        self._stop.set()
        self.wake.set()
        if self._thread:
            self._thread.join(timeout=timeout_s)
