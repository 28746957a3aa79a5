"""Long work (training, evaluation, big ingests) as job rows, not blocked consumers.

A handler enqueues a job in its transaction and returns. A `JobRunner` thread in the same process
executes queued jobs; the job's final status and the events it produces commit in one transaction,
so a job yields its result events exactly once. A job found `running` at start-up belongs to a
process that died: it is executed again, and the executor resumes from its own checkpoints.

Several runners may share one store (replicas of a service on PostgreSQL). A claim is a lease: the
runner's `owner` name and `lease_until`, renewed every third of LEASE_S while the job runs. Claims
lock the row (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers anyway), so two
runners never claim one job; a running job is taken over only when its lease has expired (its runner
died), or by a runner of the same owner name (the same service restarted on the same host). A runner
that lost its lease cannot finish the job: its result is dropped, the new owner's counts.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

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
# How long a claim holds without renewal: a dead runner's job is taken over this long after its last renewal.
LEASE_S = 30.0


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


def _updated(result: sa.Result[Any]) -> int:
    """How many rows an UPDATE changed."""
    return int(cast("sa.CursorResult[Any]", result).rowcount)


class _Lease:
    """Renews a claimed job's lease on a thread while the job runs."""

    def __init__(self, store: Store, job_id: str, owner: str, lease_s: float) -> None:
        self.store, self.job_id, self.owner, self.lease_s = store, job_id, owner, lease_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{job_id[:8]}", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._done.wait(self.lease_s / 3):
            try:
                held = self.store.run(lambda s: _updated(s.execute(
                    jobs.update().where(jobs.c.id == self.job_id, jobs.c.owner == self.owner)
                    .values(lease_until=utcnow() + timedelta(seconds=self.lease_s)))))
            except Exception as err:  # noqa: BLE001 - the next renewal tries again; the lease is 3 renewals long
                log.warning("job %s: renewing its lease failed (%s)", self.job_id, err)
                continue
            if not held:
                log.error("job %s: another runner took it over; this run's result will be dropped", self.job_id)
                return


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

    def __init__(self, store: Store, kind: str, execute: Executor, on_failure: OnFailure | None = None, max_attempts: int = 3,
                 owner: str = "", lease_s: float = LEASE_S) -> None:
        self.store, self.kind, self.execute = store, kind, execute
        self.on_failure = on_failure or (lambda _job, _err: ())
        self.max_attempts = max_attempts
        # The same service on the same host keeps its name across restarts, so it resumes its own job at once.
        self.owner, self.lease_s = owner or f"{socket.gethostname()}/{store.service}", lease_s
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _claim(self) -> Job | None:
        def claim(s: Session) -> Job | None:
            now = utcnow()
            abandoned = sa.and_(jobs.c.status == RUNNING, sa.or_(
                jobs.c.owner == self.owner, jobs.c.lease_until.is_(None), jobs.c.lease_until < now))
            # `running` first: a job interrupted by a crash resumes before new work starts.
            row = s.execute(
                sa.select(jobs).where(jobs.c.kind == self.kind, sa.or_(jobs.c.status == QUEUED, abandoned))
                .order_by(jobs.c.status.desc(), jobs.c.created_at).limit(1).with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            s.execute(jobs.update().where(jobs.c.id == row.id).values(
                status=RUNNING, attempts=row.attempts + 1, owner=self.owner, lease_until=now + timedelta(seconds=self.lease_s),
                updated_at=now))
            return Job(row.id, row.kind, row.key, row.payload, row.attempts + 1, row.traceparent)

        return self.store.run(claim)

    def run_once(self) -> bool:
        """Execute the next job if there is one; returns whether one ran."""
        job = self._claim()
        if job is None:
            return False
        with continued_span(SPAN_JOB.format(kind=self.kind), job.traceparent, **{"tuneline.job.id": job.id}):
            try:
                with _Lease(self.store, job.id, self.owner, self.lease_s):
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
            self.store.run(lambda s: s.execute(jobs.update().where(jobs.c.id == job.id, jobs.c.owner == self.owner).values(
                status=QUEUED, error=str(err)[:4000], owner="", lease_until=None)))
            return
        self._finish(job, FAILED, list(self.on_failure(job, err)), str(err))

    def _finish(self, job: Job, status: str, events: list[Outgoing], error: str) -> None:
        def finish(s: Session) -> bool:
            # Only the lease holder's result counts: one job, one outcome, however many runners tried it.
            held = _updated(s.execute(jobs.update().where(jobs.c.id == job.id, jobs.c.owner == self.owner, jobs.c.status == RUNNING).values(
                status=status, error=error[:4000], progress=1.0 if status == SUCCEEDED else 0.0, lease_until=None,
                updated_at=utcnow()
            )))
            if held:
                for out in events:
                    emit(s, out)
            return bool(held)

        if not self.store.run(finish):
            log.error("job %s (%s): another runner holds it now; this run's %s result is dropped", job.id, self.kind, status)

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
