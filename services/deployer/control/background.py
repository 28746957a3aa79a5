"""The controller's two threads: the ticker (time-based judging) and the writer (store writes, in order)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from services.kernel.retry import RetriesExhausted, RetryPolicy

log = logging.getLogger(__name__)
TICK_S = 0.2            # time-based advances and timeouts are judged this often
PERSIST_EVERY_S = 2.0   # step progress reaches the store at least this often
# A failed write is retried where it stands, so no later write overtakes it. The store retries a
# locked or busy database itself (STORE_RETRY, about 5 s); on top of that, 5 attempts here wait
# 0.125-0.25, 0.25-0.5, 0.5-1 and 1-2 s (under 4 s in all) before the escalation, and an error that is
# not transient (a bug) escalates at once; then one try every 2.5-5 s until the store takes it.
WRITE_RETRY = RetryPolicy(attempts=5, base_s=0.25, cap_s=5.0)
STOP_WAIT_S = 10.0      # how long `stop` waits for queued writes before it gives up on them

Job = Callable[[], None]


@dataclass(frozen=True)
class WriterStatus:
    """The writer's numbers, for a status view."""

    pending: int       # writes queued, the one being tried included
    escalated: int     # writes that exhausted WRITE_RETRY since start-up (each logged critical once)
    stuck: bool        # the write being tried now is past its escalation


class Writer:
    """Runs store writes one at a time, in the order given, off the request path; nothing is dropped."""

    def __init__(self, policy: RetryPolicy = WRITE_RETRY) -> None:
        self._policy = policy
        self._jobs: queue.Queue[tuple[str, Job] | None] = queue.Queue()
        self._give_up = threading.Event()
        self._thread: threading.Thread | None = None
        self._escalated = 0
        self._trying = False     # a write is taken off the queue and being tried
        self._stuck = False

    def submit(self, what: str, job: Job) -> None:
        """Queue a write (`what` names it in the logs)."""
        self._jobs.put((what, job))

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="rollout-writer", daemon=True)
        self._thread.start()

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """Finish the queued writes and end the thread; a write still failing after `wait_s` is given up."""
        self._jobs.put(None)
        if self._thread is None:
            return
        self._thread.join(wait_s)
        if self._thread.is_alive():
            self._give_up.set()        # keep_trying returns at its next wait
            self._thread.join(wait_s)

    def status(self) -> WriterStatus:
        """Queued writes and escalations now."""
        return WriterStatus(self._jobs.qsize() + int(self._trying), self._escalated, self._stuck)

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            what, job = item
            self._trying = True
            done = self._policy.keep_trying(partial(_ran, job), escalate=partial(self._escalate, what),
                                            stop=self._give_up, what=f"deployer: {what}")
            self._trying = self._stuck = False
            if not done:
                log.error("deployer: stopped with %s and %d more write(s) not done; the store is behind the "
                          "rollout state this process served", what, self._jobs.qsize())
                return

    def _escalate(self, what: str, gave_up: RetriesExhausted) -> None:
        # The store is what fails, so nothing can go out through it: no outbox event, no alert.raised
        # (the deployer sends events only through the store). Serving goes on from the state in
        # memory; the operator gets a critical log, and the status view the counter.
        self._escalated += 1
        self._stuck = True
        log.critical("deployer: %s failed %d time(s) (%s); rollout state and deployment events are not reaching "
                     "the store; still retrying, later writes wait behind it", what, gave_up.attempts, gave_up.error)


def _ran(job: Job) -> bool:
    job()
    return True


class Ticker:
    """Calls `tick` every TICK_S and `persist` every PERSIST_EVERY_S, on one thread, until stopped."""

    def __init__(self, tick: Callable[[], None], persist: Callable[[], None]) -> None:
        self._tick, self._persist = tick, persist
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the ticker thread."""
        self._thread = threading.Thread(target=self._run, name="rollout-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread (after the tick in progress, if any)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)

    def _run(self) -> None:
        last_persist = time.monotonic()
        while not self._stop.wait(TICK_S):
            self._tick()
            if time.monotonic() - last_persist >= PERSIST_EVERY_S:
                self._persist()
                last_persist = time.monotonic()
