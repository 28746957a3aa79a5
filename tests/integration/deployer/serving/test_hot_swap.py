"""R22 (server half) and R23: hot swaps under steady load, a corrupt adapter among them."""

import shutil
import threading
import time

import grpc
import pytest

from services.deployer.domain.routing import RoutingTable
from services.deployer.serving.pool import AdapterPool
from services.kernel.errors import IntegrityError

pytestmark = pytest.mark.integration


class Load:
    """Client threads asking continuously; every answer's (status, digest) is kept."""

    def __init__(self, stub, kit, goals=("banking",), threads: int = 4) -> None:
        self.results: list[tuple[str, grpc.StatusCode, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(stub, kit, goals[i % len(goals)], i))
                         for i in range(threads)]

    def _run(self, stub, kit, goal: str, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                r = kit.ask(stub, f"client {n} asks question {i}", goal=goal, request_id=f"c{n}-{i}")
                self.results.append((goal, grpc.StatusCode.OK, r.adapter_digest))
            except grpc.RpcError as err:
                self.results.append((goal, err.code(), ""))

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def wait_for(self, n: int, deadline_s: float = 60, goal: str = "banking") -> None:
        """Until n more requests for the goal have been answered OK (or the deadline)."""
        def ok() -> int:
            return sum(1 for g, c, _ in list(self.results) if g == goal and c == grpc.StatusCode.OK)
        end, target = time.monotonic() + deadline_s, ok() + n
        while ok() < target and time.monotonic() < end:
            time.sleep(0.005)


def corrupt_copy(folder, dest):
    shutil.copytree(folder, dest)
    data = bytearray((dest / "adapter_model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0x01
    (dest / "adapter_model.safetensors").write_bytes(bytes(data))
    return dest


def test_twenty_hot_swaps_one_corrupt_zero_failed_requests(tiny_base, adapters, serve, kit, tmp_path):
    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    extra_digest, extra_dir = kit.make_adapter(tiny_base, tmp_path / "extra", seed=99)
    corrupt = corrupt_copy(extra_dir, tmp_path / "corrupt")
    routing = RoutingTable()
    current = adapters[0]
    pool.load(*current)
    routing.set(kit.route(kit.slot(*current)))
    running = serve(pool, routing)
    swaps, refused, served_by = 0, 0, []
    with Load(running.stub, kit) as load:
        load.wait_for(20)
        for i in range(1, 21):
            target = (extra_digest, corrupt) if i == 10 else adapters[i % len(adapters)]
            try:
                pool.load(*target)
            except IntegrityError:
                refused += 1  # the old adapter keeps serving
            else:
                routing.set(kit.route(kit.slot(*target)))
                pool.unload(current[0])
                current = target
            swaps += 1
            load.wait_for(10)
            served_by.append(current[0])
    codes = [c for _, c, _ in load.results]
    failed = sum(c != grpc.StatusCode.OK for c in codes)
    digests = {d for _, _, d in load.results}
    print(f"R23: {swaps} swaps ({refused} corrupt refused), failed {failed}/{len(codes)} requests")
    assert (swaps, refused, failed) == (20, 1, 0)
    assert extra_digest not in digests and digests <= {d for d, _ in adapters}
    assert pool.loaded() == {current[0]} and len(codes) >= 200


def test_no_request_is_answered_by_an_adapter_outside_the_pool(tiny_base, adapters, serve, kit, tmp_path):
    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    (da, dir_a), (db, dir_b), (dc, dir_c) = adapters[:3]
    pool.load(da, dir_a)
    routing = RoutingTable()
    # banking: a 50 % canary whose adapter is not in the pool; other: a champion that is not in the pool.
    routing.set(kit.route(kit.slot(da, dir_a), kit.slot(db, dir_b, "canary", 50), "canary"))
    routing.set(kit.route(kit.slot(dc, dir_c), goal="other"))
    running = serve(pool, routing)
    with Load(running.stub, kit, goals=("banking", "other"), threads=4) as load:
        load.wait_for(200, deadline_s=120)
    ok = [(g, d) for g, c, d in load.results if c == grpc.StatusCode.OK]
    unapproved = [d for _, d in ok if d != da]
    other_codes = {c for g, c, _ in load.results if g == "other"}
    print(f"R22: served by an adapter not in the pool: {len(unapproved)}/{len(load.results)}")
    assert unapproved == [] and len(ok) >= 200
    assert other_codes == {grpc.StatusCode.UNAVAILABLE}
