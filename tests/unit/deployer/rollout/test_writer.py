"""The controller's background writer: retries in place (order kept), escalates once, still stops."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from services.deployer.control.background import Writer
from services.kernel.errors import TransientError
from services.kernel.retry import RetryPolicy

# Milliseconds instead of seconds; every error counts as worth retrying.
FAST = RetryPolicy(attempts=3, base_s=0.001, cap_s=0.004, retry_on=lambda err: True)


class Flaky:
    """A store write that fails `failures` times, then records itself in `done`."""

    def __init__(self, name: str, done: list[str], failures: int = 0) -> None:
        self.name, self.done, self.failures, self.calls = name, done, failures, 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise TransientError(f"{self.name}: database is locked")
        self.done.append(self.name)


def test_a_failed_write_is_retried_before_any_later_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    done: list[str] = []
    writer = Writer(FAST)
    writer.submit("saving goal g (canary)", Flaky("first", done, failures=5))    # past the 3 attempts
    writer.submit("saving goal g (promoted)", Flaky("second", done))
    with caplog.at_level(logging.CRITICAL):
        writer.start()
        writer.stop()
    assert done == ["first", "second"]
    criticals = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(criticals) == 1 and "saving goal g (canary)" in criticals[0].getMessage()
    assert writer.status().escalated == 1 and not writer.status().stuck and writer.status().pending == 0


def test_a_write_within_the_policy_is_not_escalated() -> None:
    done: list[str] = []
    writer = Writer(FAST)
    writer.submit("saving step progress", Flaky("progress", done, failures=2))
    writer.start()
    writer.stop()
    assert done == ["progress"] and writer.status().escalated == 0


def test_stop_ends_the_thread_while_a_write_keeps_failing() -> None:
    done: list[str] = []
    never = Flaky("never", done, failures=10**9)
    writer = Writer(FAST)
    writer.submit("saving goal g (canary)", never)
    writer.submit("saving goal g (promoted)", Flaky("after", done))
    writer.start()
    deadline = time.monotonic() + 5
    while not writer.status().stuck and time.monotonic() < deadline:
        time.sleep(0.005)
    assert writer.status().stuck and writer.status().pending == 2     # the stuck write and the one behind it
    started = time.monotonic()
    writer.stop(wait_s=0.2)
    assert time.monotonic() - started < 1.0
    assert done == [] and never.calls > FAST.attempts
    assert not any(t.name == "rollout-writer" and t.is_alive() for t in threading.enumerate())
