"""The one retry policy: which errors are worth retrying, how long to wait, and when to give up.

Every loop that retries (a consumer's transaction, a store transaction, the outbox relay, a dead
letter's send, the deployer's background writes) goes through a `RetryPolicy`:

- **Classification.** Only transient errors are retried: `TransientError`, a database that is locked,
  busy, lost its connection or lost a serialization race, a connection pool with no free connection
  in time, a Kafka error the client marks retriable, timeouts and refused connections. Everything
  else — `PermanentError`, `ConfigError`, and plain bugs (`TypeError`, `KeyError`, ...) — fails at
  once: retrying a bug only delays the dead letter.
- **Backoff.** Exponential from `base_s`, capped at `cap_s`, with "equal jitter" (half the delay
  fixed, half random) so that processes retrying the same broker or database spread out, while no
  retry ever collapses to zero wait.
- **Escalation.** A policy has a finite number of attempts; `call` then raises `RetriesExhausted`.
  A loop that must keep going (nothing accepted may be lost) uses `keep_trying`, which escalates
  once, through the callback the caller gives (a dead letter, an alert, a critical log), and goes
  on at the capped delay.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.kernel.errors import PermanentError, TransientError, TunelineError

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT_DB_TEXT = ("database is locked", "database is busy", "could not serialize", "deadlock detected")


def is_transient(err: BaseException) -> bool:
    """Whether retrying the same work may succeed (see the module docstring for the classes)."""
    if isinstance(err, PermanentError):
        return False
    if isinstance(err, TransientError | OperationalError | PoolTimeout | TimeoutError | ConnectionError):
        return True
    if isinstance(err, SQLIntegrityError):
        # A unique key taken by a concurrent writer between our read and our write: the retry
        # re-reads and finds the other writer's row (inbox rows, outbox ids, job keys).
        return True
    if isinstance(err, DBAPIError):
        return bool(err.connection_invalidated) or any(s in str(err).lower() for s in _TRANSIENT_DB_TEXT)
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        return bool(err.args[0].retriable())
    return False


class RetriesExhausted(TunelineError):
    """The policy gave up: `error` is the last failure, after `attempts` tries."""

    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(f"{error} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.error, self.attempts = error, attempts


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, jittered exponential backoff over transient errors."""

    attempts: int = 5
    base_s: float = 0.05
    cap_s: float = 5.0
    retry_on: Callable[[BaseException], bool] = is_transient
    sleep: Callable[[float], object] = field(default=time.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError(f"invalid retry policy: {self}")

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based): equal jitter under the cap."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng() * ceiling / 2

    def call(self, work: Callable[[], T], *, what: str = "", stop: threading.Event | None = None) -> T:
        """Run `work` until it succeeds; a non-transient error or the last attempt raises RetriesExhausted.

        A set `stop` event ends the waiting between attempts early (with RetriesExhausted).
        """
        for attempt in range(1, self.attempts + 1):
            try:
                return work()
            except Exception as err:
                if attempt == self.attempts or not self.retry_on(err):
                    raise RetriesExhausted(err, attempt) from err
                wait = self.delay(attempt)
                log.info("%s: attempt %d failed (%s); retrying in %.2f s", what or "retry", attempt, err, wait)
                if self._wait(wait, stop):
                    raise RetriesExhausted(err, attempt) from err
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, seconds: float, stop: threading.Event | None) -> bool:
        """Wait, returning early (True) when `stop` is set."""
        if stop is None:
            self.sleep(seconds)
            return False
        return stop.wait(seconds)

    def keep_trying(
        self,
        work: Callable[[], T],
        *,
        escalate: Callable[[RetriesExhausted], None],
        stop: threading.Event | None = None,
        what: str = "",
    ) -> T | None:
        """Retry `work` through every error until it succeeds or `stop` is set (then None).

        For work that must not be dropped (a dead letter, a rollout's durable row): after the
        policy's attempts, `escalate` is called once and the retries go on at the capped delay.
        """
        escalated = False
        while stop is None or not stop.is_set():
            try:
                return self.call(work, what=what, stop=stop)
            except RetriesExhausted as gave_up:
                if stop is not None and stop.is_set():
                    break
                if not escalated:
                    escalate(gave_up)
                    escalated = True
                wait = self.delay(self.attempts + 1)
                log.warning("%s: still failing (%s); next try in %.1f s", what or "retry", gave_up.error, wait)
                self._wait(wait, stop)
        return None
