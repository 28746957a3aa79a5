"""`tuneline up|down` as a user runs them: all five services come up healthy; a service killed with
SIGKILL comes back with the next `up` and the loop goes on with no lost or duplicated effect;
`down` leaves no process behind."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Outgoing
from services.kernel.outbox import publish_now
from services.kernel.settings import Settings
from services.stack import processes
from tests.support import REPO, EventLog, free_ports, settings_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=REPO, env=settings_env(settings),
                          capture_output=True, text=True, timeout=400)


def _publish(settings: Settings, path: Path, name: str) -> str:
    msg = ev.DatasetPublished(dataset_name=name, uri=str(path), format="csv", publisher="test-team")
    return publish_now(settings, [Outgoing(msg, name)], "test/upstream")[0]


def _slice(dest: Path, offset: int) -> Path:
    """Every sixth row of hwu64's train split (from `offset`): all intents, ~25 rows each."""
    with open(REPO / "datasets" / "hwu64" / "train.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with open(dest, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([rows[0], *rows[1 + offset :: 6]])
    return dest


def _descendants(pid: int) -> list[str]:
    """Live processes of a service's process group, with their command lines (psutil directly, not
    the liveness module under test)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{proc.pid}: {' '.join(proc.cmdline())[:120]}")
        except (psutil.Error, OSError):
            continue
    return found


def test_up_restores_a_killed_service_and_down_leaves_nothing(settings: Settings, tmp_path: Path) -> None:
    deployer_port, monitor_port = free_ports(2)
    s = settings.replace(deployer_address=f"127.0.0.1:{deployer_port}", monitor_address=f"127.0.0.1:{monitor_port}")
    data = _slice(s.path("inbox", "hwu64-a.csv"), 0)
    registered = EventLog(s, "dataset.registered")
    try:
        assert _cli(s, "up").returncode == 0
        groups = {n: processes.service_pid(s, n) for n in processes.SERVICES}
        assert all(groups.values()) and all(st.healthy for st in processes.states(s))

        first = _publish(s, data, "hwu64-slice")
        registered.wait(1, 180, where=lambda e: e.message.published_event_id == first)
        ingest_pid = groups["ingest"]
        assert ingest_pid is not None  # every service has a pid (asserted above)
        os.kill(ingest_pid, signal.SIGKILL)
        wait_for(lambda: processes.service_pid(s, "ingest") is None, 30, "ingest to die")
        again = _publish(s, data, "hwu64-slice")  # same bytes while ingest is down: accepted, no second registration

        up = _cli(s, "up")
        assert up.returncode == 0, up.stderr
        assert processes.service_pid(s, "ingest") not in (None, groups["ingest"])
        assert all(processes.service_pid(s, n) == groups[n] for n in processes.SERVICES if n != "ingest")
        other = _publish(s, _slice(s.path("inbox", "hwu64-b.csv"), 1), "hwu64-other")
        registered.wait(2, 180)
        registered.poll(3.0)
        # Delivery is at-least-once: the SIGKILL can land between the relay publishing the first
        # registration and marking it sent, and the restarted ingest then re-publishes that record with
        # the same event id, which every consumer's inbox drops. One registration is one event id.
        by_id = {e.id: e.message.dataset_name for e in registered.items}
        by_name = list(by_id.values())
        assert by_name.count("hwu64-slice") == 1, "the republished bytes registered once, nothing lost or doubled"
        assert by_name.count("hwu64-other") == 1 and other
        assert not [e for e in registered.items if e.message.published_event_id == again]
    finally:
        down = _cli(s, "down", "--keep-broker")
    assert down.returncode == 0
    leftovers = [p for pid in groups.values() if pid for p in _descendants(pid)]
    assert not leftovers, f"processes left behind after down: {leftovers}"
