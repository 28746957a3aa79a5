import hashlib
import threading
import time

import pytest

from services.deployer.serving.batcher import MicroBatcher, Overloaded, ShuttingDown
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.predictions import AdapterNotLoaded

A, B = ("sha256:" + hashlib.sha256(str(n).encode()).hexdigest() for n in (1, 2))


def started(pool, **config) -> MicroBatcher:
    batcher = MicroBatcher(pool, ServingConfig(**config))
    batcher.start()
    return batcher


def test_a_lone_request_does_not_wait_for_max_wait(kit):
    batcher = started(kit.FakePool([A]), max_wait_ms=1000)
    # Held for max_wait_ms it would take >= 1 s; the lone request must come back well before that.
    t0 = time.monotonic()
    assert batcher.submit(A, "label:1 hi").result(timeout=10).labels[1] == "refund"
    assert time.monotonic() - t0 < 0.9
    batcher.stop()


def test_requests_queued_while_the_model_is_busy_run_as_one_batch_per_adapter(kit):
    pool = kit.FakePool([A, B])
    pool.gate = threading.Event()
    batcher = started(pool, max_batch_size=16, max_wait_ms=0)
    first = batcher.submit(A, "first")
    deadline = time.monotonic() + 5
    while batcher.queued and time.monotonic() < deadline:  # the worker took "first" and is blocked
        time.sleep(0.001)
    futures = [batcher.submit(A, f"a{i}") for i in range(5)] + [batcher.submit(B, f"b{i}") for i in range(3)]
    pool.gate.set()
    for f in [first, *futures]:
        f.result(timeout=5)
    assert pool.batches == [(A, ["first"]), (A, [f"a{i}" for i in range(5)]), (B, [f"b{i}" for i in range(3)])]
    assert max(r.batch_size for r in (f.result() for f in futures)) == 5
    batcher.stop()


def test_batches_are_capped_at_max_batch_size(kit):
    pool = kit.FakePool([A])
    pool.gate = threading.Event()
    batcher = started(pool, max_batch_size=4, max_wait_ms=0)
    futures = [batcher.submit(A, f"t{i}") for i in range(10)]
    pool.gate.set()
    for f in futures:
        f.result(timeout=5)
    assert max(len(texts) for _, texts in pool.batches) == 4
    assert sum(len(texts) for _, texts in pool.batches) == 10
    batcher.stop()


def test_a_full_queue_refuses_with_overloaded_and_keeps_serving(kit):
    pool = kit.FakePool([A])
    pool.gate = threading.Event()
    batcher = started(pool, queue_capacity=3, max_wait_ms=0)
    accepted = []
    with pytest.raises(Overloaded):
        for i in range(10):
            accepted.append(batcher.submit(A, f"t{i}"))
    pool.gate.set()
    assert all(f.result(timeout=5) for f in accepted)
    assert batcher.submit(A, "after").result(timeout=5)
    batcher.stop()


def test_an_adapter_not_in_the_pool_is_refused_at_submit(kit):
    batcher = started(kit.FakePool([A]))
    with pytest.raises(AdapterNotLoaded):
        batcher.submit(B, "hello")
    batcher.stop()


def test_a_model_failure_reaches_every_request_of_the_batch_and_leases_are_returned(kit):
    pool = kit.FakePool([A])
    pool.fail_with = RuntimeError("boom")
    batcher = started(pool)
    futures = [batcher.submit(A, "x"), batcher.submit(A, "y")]
    for f in futures:
        with pytest.raises(RuntimeError, match="boom"):
            f.result(timeout=5)
    batcher.stop()
    assert pool.leases[A] == 0


def test_stop_finishes_queued_work_and_then_refuses_new_work(kit):
    pool = kit.FakePool([A])
    pool.gate = threading.Event()
    batcher = started(pool, max_wait_ms=0)
    futures = [batcher.submit(A, f"t{i}") for i in range(6)]
    stopper = threading.Thread(target=batcher.stop)
    stopper.start()
    pool.gate.set()
    stopper.join(10)
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(ShuttingDown):
        batcher.submit(A, "late")


def test_concurrent_clients_fill_batches_when_max_wait_allows(kit):
    pool = kit.FakePool([A])
    batcher = started(pool, max_batch_size=8, max_wait_ms=200)
    barrier = threading.Barrier(8)

    def client() -> None:
        for _ in range(5):
            barrier.wait(10)
            batcher.submit(A, "x").result(timeout=10)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sizes = [len(texts) for _, texts in pool.batches]
    # Rounds after the first know several clients are active and wait (up to 200 ms) for them. How the
    # 8 split between two batches depends on thread scheduling (measured: 5 to 14 batches, largest 7
    # or 8, over 15 quiet runs), so the bound is on batching happening, not on a perfect split; one
    # request per batch would be 40.
    assert sum(sizes) == 40 and max(sizes) >= 6 and len(sizes) <= 20, sizes
    batcher.stop()
