"""The one retry policy: what is retried, how long it waits, when it gives up or escalates."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException
from sqlalchemy.exc import OperationalError

from services.kernel.errors import ConfigError, InvalidInput, TransientError
from services.kernel.retry import RetriesExhausted, RetryPolicy, is_transient


@pytest.mark.parametrize("err", [
    TransientError("broker away"), OperationalError("select", {}, Exception("database is locked")),
    TimeoutError(), ConnectionRefusedError(), KafkaException(KafkaError(KafkaError._TRANSPORT, "down", retriable=True)),
])
def test_transient_errors_are_retried(err: BaseException) -> None:
    assert is_transient(err)


@pytest.mark.parametrize("err", [
    InvalidInput("bad row"), ConfigError("bad setting"), KeyError("bug"), TypeError("bug"), ValueError("bug"),
    KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied", retriable=False)),
])
def test_permanent_errors_config_errors_and_bugs_are_not(err: BaseException) -> None:
    assert not is_transient(err)


def test_the_delay_doubles_under_the_cap_with_equal_jitter() -> None:
    policy = RetryPolicy(attempts=10, base_s=0.1, cap_s=1.0)
    assert [policy.delay(a, rng=lambda: 1.0) for a in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])
    assert [policy.delay(a, rng=lambda: 0.0) for a in (1, 5)] == pytest.approx([0.05, 0.5])  # never zero


def _flaky(failures: int, error: BaseException) -> tuple[list[int], object]:
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "done"

    return calls, work


def test_call_retries_transient_errors_until_success() -> None:
    waits: list[float] = []
    calls, work = _flaky(2, TransientError("busy"))
    assert RetryPolicy(attempts=3, sleep=waits.append).call(work) == "done"  # type: ignore[arg-type]
    assert len(calls) == 3 and len(waits) == 2


def test_call_gives_up_after_the_last_attempt_and_at_once_on_a_bug() -> None:
    calls, work = _flaky(99, TransientError("busy"))
    with pytest.raises(RetriesExhausted) as gave_up:
        RetryPolicy(attempts=4, sleep=lambda _s: None).call(work)  # type: ignore[arg-type]
    assert gave_up.value.attempts == 4 and len(calls) == 4 and isinstance(gave_up.value.error, TransientError)
    calls, work = _flaky(99, KeyError("bug"))
    with pytest.raises(RetriesExhausted) as gave_up:
        RetryPolicy(attempts=4, sleep=lambda _s: None).call(work)  # type: ignore[arg-type]
    assert gave_up.value.attempts == 1 and len(calls) == 1


def test_keep_trying_escalates_once_and_goes_on_until_it_succeeds() -> None:
    escalations: list[RetriesExhausted] = []
    calls, work = _flaky(7, TransientError("broker away"))
    policy = RetryPolicy(attempts=2, sleep=lambda _s: None)
    assert policy.keep_trying(work, escalate=escalations.append) == "done"  # type: ignore[arg-type]
    assert len(calls) == 8 and len(escalations) == 1


def test_keep_trying_ends_when_stopped() -> None:
    stop = threading.Event()
    escalations: list[RetriesExhausted] = []

    def work() -> None:
        stop.set()  # shutdown begins while the work is failing
        raise TransientError("broker away")

    assert RetryPolicy(attempts=3, base_s=5.0, cap_s=5.0).keep_trying(work, escalate=escalations.append, stop=stop) is None
    assert not escalations
