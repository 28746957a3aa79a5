"""Fixtures for the kernel's integration tests: the probe service as a real process."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.kernel.settings import Settings
from tests.support import python, start_process, stop_process

PROBE = Path(__file__).with_name("probe_service.py")


@pytest.fixture
def probe(settings: Settings) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start probe service processes; each is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> subprocess.Popen[bytes]:
        proc = start_process(python(str(PROBE)), settings, settings.state_dir / "probe.log", **env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_process(proc)
