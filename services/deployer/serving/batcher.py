"""Micro-batching: requests grouped by adapter, run on inference worker threads, answered by futures.

A batch closes when it holds max_batch_size texts, or when max_wait_ms has passed. The batcher
only waits when recent traffic shows other requests in flight (the peak of outstanding requests since
the last batch): a lone client never pays max_wait_ms, while 8 concurrent clients fill batches of 8.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from services.deployer.serving import metrics
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.predictions import BatchModel, Scored, split
from services.kernel.errors import TransientError
from services.kernel.metrics import short_digest

log = logging.getLogger(__name__)


class Overloaded(TransientError):
    """The queue in front of the model is full; the client should back off and retry."""


class ShuttingDown(TransientError):
    """The server is draining and accepts no new work."""


@dataclass
class _Pending:
    text: str
    future: Future[Scored]
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Bounded per-adapter queues drained in batches by worker threads."""

    def __init__(self, model: BatchModel, config: ServingConfig) -> None:
        self._model = model
        self._config = config
        self._cv = threading.Condition()
        self._queues: dict[str, deque[_Pending]] = {}
        self._queued = 0
        self._outstanding = 0
        self._peak = 0
        self._accepting = True
        self._stopped = False
        self._workers: list[threading.Thread] = []
        self._unobserve: Callable[[], None] | None = None
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        """Start the inference worker threads."""
        self._unobserve = metrics.QUEUE_DEPTH.add(lambda: [(self._queued, {})])
        for i in range(self._config.inference_workers):
            t = threading.Thread(target=self._work, name=f"inference-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def submit(self, digest: str, text: str) -> Future[Scored]:
        """Queue one text for an adapter; Overloaded when full, AdapterNotLoaded when not in the pool."""
        with self._cv:
            if not self._accepting:
                metrics.REFUSALS.add(1, {"reason": "draining"})
                raise ShuttingDown("the server is shutting down", hint="retry on another replica")
            if self._queued >= self._config.queue_capacity:
                metrics.REFUSALS.add(1, {"reason": "queue_full"})
                raise Overloaded(f"{self._queued} requests are waiting for the model", hint="retry with backoff")
            self._model.acquire(digest)
            pending = _Pending(text, Future())
            self._queues.setdefault(digest, deque()).append(pending)
            self._queued += 1
            self._outstanding += 1
            self._peak = max(self._peak, self._outstanding)
            self._cv.notify_all()
        return pending.future

    def stop(self, timeout_s: float = 30.0) -> None:
        """Refuse new work, finish everything queued, then stop the workers."""
        with self._cv:
            self._accepting = False
            self._stopped = True
            self._cv.notify_all()
        for t in self._workers:
            t.join(timeout_s)
        if self._unobserve is not None:
            self._unobserve()

    @property
    def queued(self) -> int:
        """Texts waiting for the model now."""
        return self._queued

    def _work(self) -> None:
        while True:
            taken = self._next_batch()
            if taken is None:
                return
            self._run(*taken)

    def _next_batch(self) -> tuple[str, list[_Pending]] | None:
        with self._cv:
            while True:
                while self._queued == 0:
                    if self._stopped:
                        return None
                    self._cv.wait()
                digest = min(self._queues, key=lambda d: self._queues[d][0].enqueued)
                self._fill(digest)
                if digest in self._queues:  # another worker may have taken it while we waited
                    return digest, self._take(digest)

    def _take(self, digest: str) -> list[_Pending]:
        queue = self._queues[digest]
        batch = [queue.popleft() for _ in range(min(len(queue), self._config.max_batch_size))]
        if not queue:
            del self._queues[digest]
        self._queued -= len(batch)
        self._peak = self._outstanding
        return batch

    def _fill(self, digest: str) -> None:
        """Wait (the lock is released while waiting) until the batch is as full as recent traffic allows."""
        target = min(self._config.max_batch_size, self._peak)
        deadline = self._queues[digest][0].enqueued + self._config.max_wait_ms / 1000
        while digest in self._queues and len(self._queues[digest]) < target and not self._stopped:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._cv.wait(left)

    def _run(self, digest: str, batch: list[_Pending]) -> None:
        metrics.BATCH_SIZE.record(len(batch), {"adapter": short_digest(digest)})
        try:
            results = split(self._model.predict(digest, [p.text for p in batch]))
        except Exception as err:
            log.exception("batch of %d for %s failed", len(batch), digest)
            for p in batch:
                p.future.set_exception(err)
        else:
            for p, r in zip(batch, results, strict=True):
                p.future.set_result(r)
        finally:
            self._finish(digest, len(batch))

    def _finish(self, digest: str, n: int) -> None:
        for _ in range(n):
            self._model.release(digest)
        with self._cv:
            self._outstanding -= n
            self.batches += 1
            self.items += n
