"""BENCHMARKS.md S5: Tuneline's inference server against Ray Serve, same model, adapter and load generator.

Ray Serve serves the same bundled MiniLM with the same LoRA adapter through its own gRPC proxy and
Tuneline's own `inference.proto`, so both arms are driven by the same closed-loop gRPC client
(`benchmarks.serve.closed_loop`, concurrency 8, banking77 test texts). The Ray replica batches with
`@serve.batch` at the same limits as Tuneline's micro-batcher (16 requests, 2 ms) and runs torch on one
thread, like Tuneline's server. The arms alternate after a warm-up; ratios are per repetition.

    python -m benchmarks.serve_ray --profile smoke|full [--out FILE]
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import torch

from benchmarks import serve_process
from benchmarks.report import write_result
from benchmarks.serve import AUTH, BASE, PROFILES, Bench, closed_loop, profile_main, ratio_arms
from services.deployer.entrypoints.grpc_server import InferenceClient
from services.deployer.serving.config import ServingConfig

if TYPE_CHECKING:
    from tuneline.serving.v1 import inference_pb2 as pb

APP = "s5"
SERVICER = "tuneline.serving.v1.inference_pb2_grpc.add_InferenceServicer_to_server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ray_serve_client(digest: str, folder: Path, work: Path) -> InferenceClient:
    """Start Ray Serve with one replica serving the adapter over gRPC; a client of its proxy."""
    import ray
    from ray import serve
    from ray.serve.config import gRPCOptions

    class RayInference:
        def __init__(self) -> None:
            from services.deployer.serving.pool import AdapterPool

            torch.set_num_threads(1)
            self.pool = AdapterPool(BASE, device="auto", work_dir=work / "ray-pool")
            self.pool.load(digest, folder)

        @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
        async def scored(self, texts: list[str]) -> list[tuple[str, float]]:
            p = self.pool.predict(digest, texts)
            best = p.probs.argmax(axis=1)
            return [(p.labels[int(i)], float(p.probs[n, i])) for n, i in enumerate(best)]

        async def Predict(self, request: pb.PredictRequest) -> pb.PredictResponse:  # the proto's method name
            from tuneline.serving.v1 import inference_pb2 as pb

            label, confidence = await self.scored(request.text)
            return pb.PredictResponse(label=label, confidence=confidence, adapter_digest=digest,
                                      request_id=request.request_id)

    # The decorator applied by a call: a class decorator's result is invisible to the type checker.
    deployment = serve.deployment(num_replicas=1, max_ongoing_requests=64, ray_actor_options={"num_cpus": 1})(RayInference)
    port = _free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    serve.start(grpc_options=gRPCOptions(port=port, grpc_servicer_functions=[SERVICER]),
                http_options={"port": _free_port()})
    serve.run(deployment.bind(), name=APP, route_prefix="/" + APP)
    return InferenceClient(grpc.insecure_channel(f"127.0.0.1:{port}"))


def run(profile: str = "smoke", out: Path | None = None) -> dict[str, object]:
    """S5 on this machine; writes one JSON and returns it."""
    from ray import serve

    p = PROFILES[profile]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        b = Bench(Path(work))
        server = None
        try:
            # Each server in a process of its own (Ray's replica is one): the load generator's threads
            # share this interpreter with neither.
            server, ours, _ = serve_process.start(b.a[1], ServingConfig(max_batch_size=16, max_wait_ms=2.0))
            theirs = ray_serve_client(*b.a, Path(work))
            texts = b.texts
            to_ray = (*AUTH, ("application", APP))  # Ray's gRPC proxy routes by this metadata key
            r = ratio_arms(lambda: closed_loop(theirs, "one", texts, 8, p["seconds"], to_ray),
                           lambda: closed_loop(ours, "one", texts, 8, p["seconds"]), p["reps"])
        finally:
            serve.shutdown()  # type: ignore[no-untyped-call]  # ray.serve.shutdown is unannotated
            if server is not None:
                serve_process.stop(server)
            b.close()
    result: dict[str, object] = {
        **r, "profile": profile, "baseline": "Ray Serve (gRPC proxy, @serve.batch 16 / 2 ms, 1 replica)",
        "arm": "Tuneline's server in its own process (16 / 2 ms)", "must": "throughput >= 1.5x, p99 <= 0.7x"}
    result["pass"] = r["throughput_ratio"]["median"] >= 1.5 and r["p99_ratio"]["median"] <= 0.7
    result["written_to"] = str(write_result("serve-ray", result, out))
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m benchmarks.serve_ray --profile smoke --out FILE."""
    profile_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
