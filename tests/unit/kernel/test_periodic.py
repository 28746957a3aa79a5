"""Periodic upkeep: it keeps calling after a failure, and runs its final call at stop."""

from services.kernel.periodic import Periodic
from tests.support import wait_for


def test_a_failing_call_does_not_stop_the_next_and_stop_runs_the_final_call():
    calls: list[int] = []

    def flaky() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("the store is busy")

    finals: list[int] = []
    p = Periodic(flaky, 0.01, "test upkeep", final=lambda: finals.append(len(calls)))
    p.start()
    wait_for(lambda: len(calls) >= 3, 10, "three calls, the first one failing")
    p.stop()
    stopped_at = len(calls)
    assert finals == [stopped_at] and not p._thread.is_alive()  # type: ignore[union-attr]
