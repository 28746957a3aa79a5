"""R24: SIGTERM under load: health goes NOT_SERVING, in-flight requests finish, nothing accepted is dropped."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.deployer.entrypoints.grpc_server import InferenceClient
from services.kernel.settings import REPO_ROOT

pytestmark = pytest.mark.integration

# The server process: the real pool and server, each batch slowed by 30 ms so requests are in flight.
SERVER = r'''
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from services.deployer.domain.routing import GoalRoute, RoutingTable, Slot
from services.deployer.entrypoints.grpc_server import build_server
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.inference_log import NullLog
from services.deployer.serving.outcome import NoObserver
from services.deployer.serving.pool import AdapterPool
from services.kernel.settings import Settings

base, digest, folder, out, token = sys.argv[1:6]
pool = AdapterPool(base, device="cpu", work_dir=Path(out).parent / "pool")
pool.load(digest, Path(folder))
slow = pool.predict
def predict(d, texts):
    time.sleep(0.03)
    return slow(d, texts)
pool.predict = predict
routing = RoutingTable()
slot = Slot(digest, "champion", 100, "dep", "sha256:" + "d" * 64, "sha256:" + "e" * 64, "eval", Path(folder))
routing.set(GoalRoute("banking", slot, None, "none", 0.3, frozenset(), False))
settings = Settings(grpc_tokens=[token], deployer_address="127.0.0.1:0", state_dir=Path(out).parent)
server = build_server(settings, routing, pool, NoObserver(), NullLog(),
                      config=ServingConfig(max_batch_size=2, max_wait_ms=1.0, drain_grace_s=30))
Path(out + ".port").write_text(str(server.port))
server.serve_until_signal()
Path(out).write_text(json.dumps(server.stats().__dict__))
'''


def test_sigterm_under_load_drops_no_in_flight_request(tiny_base, adapters, kit, tmp_path):
    digest, folder = adapters[0]
    out = tmp_path / "stats.json"
    env = {**os.environ,  # noqa: TID251 - the environment of the server child process: the test's own, plus its paths
           "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'protos'}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, tiny_base, digest, str(folder), str(out), kit.TOKEN],
                            cwd=REPO_ROOT, env=env)
    try:
        port = wait_for_port(Path(str(out) + ".port"), proc)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub, stop = InferenceClient(channel), threading.Event()
        results: list[tuple[grpc.StatusCode, float]] = []
        health = HealthWatch(channel)
        clients = [threading.Thread(target=client, args=(stub, kit, i, results, stop)) for i in range(8)]
        for t in clients:
            t.start()
        wait_until(lambda: sum(c == grpc.StatusCode.OK for c, _ in results) >= 40, proc)
        sent_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        stop.set()
        for t in clients:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stats = json.loads(out.read_text())
    ok_after_term = sum(1 for c, t in results if c == grpc.StatusCode.OK and t > sent_term)
    codes = {c for c, _ in results}
    dropped = stats["started"] - stats["answered"]
    print(f"R24: server accepted {stats['started']}, answered {stats['answered']}, dropped {dropped}; "
          f"{ok_after_term} answered after SIGTERM; client codes {sorted(c.name for c in codes)}")
    assert dropped == 0 and stats["failed"] == 0
    assert sum(c == grpc.StatusCode.OK for c, _ in results) == stats["answered"]
    assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    assert ok_after_term > 0  # requests in flight at SIGTERM were answered
    assert health.saw_not_serving_after(sent_term)


def client(stub, kit, n, results, stop):
    i = 0
    while not stop.is_set():
        i += 1
        try:
            kit.ask(stub, f"client {n} question {i}")
            results.append((grpc.StatusCode.OK, time.monotonic()))
        except grpc.RpcError as err:
            results.append((err.code(), time.monotonic()))
            if err.code() == grpc.StatusCode.UNAVAILABLE:
                return


class HealthWatch:
    """Follows the Health.Watch stream of the overall status."""

    def __init__(self, channel) -> None:
        self.changes: list[tuple[float, int]] = []
        self._stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        try:
            for r in self._stream:
                self.changes.append((time.monotonic(), r.status))
        except grpc.RpcError:
            pass

    def saw_not_serving_after(self, t: float) -> bool:
        return any(s == health_pb2.HealthCheckResponse.NOT_SERVING and when >= t for when, s in self.changes)


def wait_for_port(path: Path, proc, deadline_s: float = 120) -> int:
    wait_until(lambda: path.exists() and path.read_text(), proc, deadline_s)
    return int(path.read_text())


def wait_until(predicate, proc, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while not predicate():
        assert proc.poll() is None, "the server process exited"
        assert time.monotonic() < end, "deadline passed"
        time.sleep(0.01)
