"""Process liveness as `tuneline up|down|status` and the embedded broker rely on it: a running
process is alive, an exited one (zombie or reaped) is not, a reused pid fails the command check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from services.kernel import liveness

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def group() -> Iterator[subprocess.Popen[bytes]]:
    """A shell leading its own process group, with one background child."""
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    yield proc
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_running_process_is_alive_and_its_command_line_is_checked() -> None:
    proc = subprocess.Popen(SLEEPER)
    try:
        assert liveness.alive(proc.pid)
        assert liveness.alive(proc.pid, command_contains="time.sleep(60)")
        assert not liveness.alive(proc.pid, command_contains="kafka.Kafka"), "a reused pid is not the broker"
    finally:
        proc.kill()
        proc.wait()


def test_an_exited_process_is_not_alive_before_or_after_it_is_reaped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    assert _until(lambda: not liveness.alive(proc.pid)), "a zombie (exited, not reaped) is not alive"
    proc.wait()
    assert not liveness.alive(proc.pid)


def test_group_members_lists_the_live_processes_of_a_group(group: subprocess.Popen[bytes]) -> None:
    assert _until(lambda: len(liveness.group_members(group.pid)) == 2), "the shell and its background child"
    assert group.pid in liveness.group_members(group.pid)
    assert liveness.group_members(os.getpgid(0)) and group.pid not in liveness.group_members(os.getpgid(0))
    os.killpg(group.pid, signal.SIGKILL)
    assert _until(lambda: liveness.group_members(group.pid) == []), "killed members (zombies included) are gone"
