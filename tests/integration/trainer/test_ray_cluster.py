"""Ray Train on a Ray cluster (RELIABILITY.md R13 on a cluster): a head and a worker node started as
separate processes with `ray start`, the trainer connecting with RAY_ADDRESS. The run's two Ray Train
workers land one on each node; the worker node is SIGKILLed mid-run and replaced by a new one, and the
run resumes from its last checkpoint to the adapter an uninterrupted local run produces."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from services.kernel.modeling import adapter_digest
from tests.support import REPO, free_ports, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RAY = str(Path(sys.executable).with_name("ray"))


class RayCluster:
    """Ray nodes on loopback, each a `ray start --block` process in a session of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_ports()[0]
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen[bytes]] = []
        # Token authentication, as a cluster should run: every node, the trainer and the CLI read the token file.
        token = folder / "auth-token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",  # noqa: TID251 -- the Ray nodes' environment
                    "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        agent, metrics = free_ports(2)
        log = open(self.folder / f"node-{len(self.nodes)}.log", "ab")
        node = subprocess.Popen([RAY, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                                 "--object-store-memory", str(100 * 1024 * 1024), "--disable-usage-stats",
                                 "--dashboard-agent-listen-port", str(agent), "--metrics-export-port", str(metrics), *args],
                                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(node)
        return node

    def start_head(self) -> subprocess.Popen[bytes]:
        """The head: GCS on `port`, no dashboard, a temp folder of its own (short: Ray's socket paths)."""
        client = free_ports()[0]
        return self._start("--head", "--port", str(self.port), "--include-dashboard", "false",
                           "--ray-client-server-port", str(client), "--temp-dir", str(self.folder / "ray"))

    def add_worker(self) -> subprocess.Popen[bytes]:
        """A worker node joining the head."""
        return self._start("--address", self.address)

    def alive_nodes(self) -> int:
        """How many nodes the head reports active (`ray status`: no dashboard needed)."""
        done = subprocess.run([RAY, "status", "--address", self.address], env=self.env, capture_output=True, text=True, timeout=60)
        active = done.stdout.partition("Active:")[2].partition("Pending:")[0]
        return sum(1 for line in active.splitlines() if " node_" in line)

    @staticmethod
    def kill(node: subprocess.Popen[bytes]) -> None:
        """SIGKILL a node: its `ray start`, raylet, agents and workers."""
        try:
            everything = [node.pid, *(p.pid for p in psutil.Process(node.pid).children(recursive=True))]
        except psutil.Error:
            everything = [node.pid]
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in everything:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait(30)

    def stop(self) -> None:
        """Kill every node started here (never `ray stop`: it would stop every Ray on the machine)."""
        for node in reversed(self.nodes):
            self.kill(node)


@pytest.fixture
def ray_cluster() -> Iterator[RayCluster]:
    folder = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # AF_UNIX paths are short: not under pytest's tmp
    cluster = RayCluster(folder)
    try:
        cluster.start_head()
        cluster.add_worker()
        wait_for(lambda: cluster.alive_nodes() == 2, 120, "the head and the worker node")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _node_of(proc: psutil.Process, cluster: RayCluster) -> int | None:
    """Which started node a process runs under (its index), by ancestry."""
    try:
        ancestors = {p.pid for p in proc.parents()}
    except psutil.Error:
        return None
    return next((i for i, node in enumerate(cluster.nodes) if node.pid in ancestors), None)


def _train_workers_by_node(cluster: RayCluster) -> set[int]:
    found = set()
    for proc in psutil.process_iter():
        try:
            if "RayTrainWorker" in " ".join(proc.cmdline()) and (node := _node_of(proc, cluster)) is not None:
                found.add(node)
        except psutil.Error:
            continue
    return found


def test_a_run_across_two_nodes_survives_losing_the_worker_node(ray_cluster: RayCluster, reference, ray_probe,
                                                                tmp_path: Path) -> None:
    checkpoints, _ = ray_probe
    env = {**ray_cluster.env, "RAY_ADDRESS": ray_cluster.address, "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "driver.log"
    driver = subprocess.Popen([sys.executable, "-m", "tests.integration.trainer.ray_cluster_driver", str(tmp_path / "storage"),
                               "cluster", str(tmp_path / "adapter")], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=open(log, "ab"), start_new_session=True)
    try:
        wait_for(lambda: _train_workers_by_node(ray_cluster) == {0, 1} or driver.poll() is not None, 300,
                 "a Ray Train worker on each node")
        assert _train_workers_by_node(ray_cluster) == {0, 1}, f"the run did not spread over both nodes: {log.read_text()[-3000:]}"
        wait_for(lambda: checkpoints(tmp_path / "storage", "cluster") or driver.poll() is not None, 600, "a checkpoint")
        assert driver.poll() is None, "the run ended before the worker node could be killed"
        ray_cluster.kill(ray_cluster.nodes[1])
        ray_cluster.add_worker()  # the replacement a cluster manager would schedule
        stdout, _ = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(30)
    assert driver.returncode == 0, log.read_text()[-3000:]
    out = json.loads(stdout.decode().strip().splitlines()[-1])
    assert out["status"] == "succeeded", out["reason"]
    assert out["resumed_from_step"] >= 3, "it restored a checkpoint rather than starting over"
    assert out["steps"] == reference.steps == 13
    assert out["digest"] == adapter_digest(reference.adapter_dir), "the cluster run, interrupted, gives the local run's adapter"
    assert out["curve"] == json.loads(json.dumps(reference.curve)), "the same loss at every step"
