"""A load generator for the demo: real utterances through the deployer's gRPC Inference API."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from tuneline.serving.v1 import inference_pb2 as pb
from tuneline.serving.v1 import inference_pb2_grpc as pb_grpc

from services.kernel import grpc_tls
from services.kernel.ids import uuid7
from services.kernel.settings import Settings


@dataclass
class Traffic:
    """What the generator sent and what came back."""

    sent: int = 0
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    by_adapter: Counter[str] = field(default_factory=Counter)
    first_request_id: str = ""
    first_sent_at: float = 0.0
    last: pb.PredictResponse | None = None
    answered: dict[int, str] = field(default_factory=dict)  # position in the texts sent -> request id, for answered ones


class LoadGenerator:
    """Sends utterances at a steady rate from a few threads until stopped or a count is reached."""

    def __init__(self, settings: Settings, goal: str, concurrency: int = 2) -> None:
        self.goal = goal
        self._channel = grpc_tls.channel(settings, settings.deployer_address)
        self._stub = pb_grpc.InferenceStub(self._channel)  # type: ignore[no-untyped-call]  # generated gRPC code, unannotated
        self._meta = grpc_tls.bearer(settings)
        self._pool = ThreadPoolExecutor(concurrency)
        self._concurrency = concurrency
        self._lock = threading.Lock()

    def predict(self, text: str) -> pb.PredictResponse:
        """One prediction (raises grpc.RpcError)."""
        request = pb.PredictRequest(goal=self.goal, text=text, request_id=uuid7())
        reply: pb.PredictResponse = self._stub.Predict(request, metadata=self._meta, timeout=10)
        return reply

    def send(self, texts: list[str], until: threading.Event | None = None) -> Traffic:
        """Send every text once (or until the event is set), `concurrency` requests in flight."""
        traffic = Traffic()
        stop = until or threading.Event()

        def one(position: int, text: str) -> None:
            if stop.is_set():
                return
            rid = uuid7()
            with self._lock:
                traffic.sent += 1
                if not traffic.first_request_id:
                    traffic.first_request_id, traffic.first_sent_at = rid, time.time()
            try:
                resp = self._stub.Predict(pb.PredictRequest(goal=self.goal, text=text, request_id=rid), metadata=self._meta, timeout=10)
            except grpc.RpcError as err:
                with self._lock:
                    traffic.failed[err.code().name] += 1
                return
            with self._lock:
                traffic.ok += 1
                traffic.by_adapter[resp.adapter_digest] += 1
                traffic.answered[position] = rid
                traffic.last = resp

        list(self._pool.map(one, range(len(texts)), texts))
        return traffic

    def close(self) -> None:
        """Close the channel and the threads."""
        self._pool.shutdown(wait=True)
        self._channel.close()
