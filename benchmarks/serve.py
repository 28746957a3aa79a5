"""Serving benchmarks (BENCHMARKS.md S1, S3, S4, S4b, S6) on the bundled MiniLM with two LoRA adapters.

Every arm runs against the same AdapterPool in this process (one base model in memory); arms that
need different server settings get their own server on loopback, sharing that pool. Arms are
interleaved A B A B ... for `reps` repetitions after a warm-up; ratios are per repetition, reported
as median/min/max. Load is closed-loop (C client threads, each sending its next request when the last
returns) with banking77 test texts. torch runs on one thread, fixed for every arm.

    python -m benchmarks.serve --profile smoke|full [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

import grpc
import torch
from tuneline.serving.v1 import inference_pb2 as pb

from benchmarks.report import percentile, spread, write_result
from services.deployer.domain.routing import GoalRoute, Role, RoutingTable, Slot
from services.deployer.entrypoints.grpc_server import InferenceClient, InferenceServer, build_server
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.inference_log import KafkaInferenceLog, LogSink, NullLog
from services.deployer.serving.outcome import NoObserver
from services.deployer.serving.pool import AdapterPool
from services.kernel.settings import REPO_ROOT, Settings

BASE = "bundled:all-MiniLM-L6-v2"
TOKEN = "bench-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
FLOP_PER_TOKEN = 21.5e6  # MiniLM-L6: 10.6 M matmul weights x 2 (BENCHMARKS.md)


class Profile(TypedDict):
    """How long and how often each arm runs."""

    seconds: float
    reps: int
    s1_requests: int
    hot_loads: int


PROFILES: dict[str, Profile] = {"smoke": {"seconds": 1.5, "reps": 5, "s1_requests": 100, "hot_loads": 5},
                                "full": {"seconds": 5.0, "reps": 7, "s1_requests": 400, "hot_loads": 10}}

# Throughput and p99 of an arm over a base (ratio_arms); "must" and "pass" are added by _judge
# ("pass" is a keyword, hence the functional form).
RatioResult = TypedDict("RatioResult", {
    "throughput_ratio": dict[str, float], "p99_ratio": dict[str, float], "base_rps": dict[str, float],
    "arm_rps": dict[str, float], "base_p99_ms": dict[str, float], "arm_p99_ms": dict[str, float], "failed": int,
    "unlogged": NotRequired[int], "must": NotRequired[str], "pass": NotRequired[bool]})


@dataclass
class Arm:
    """One closed-loop measurement."""

    completed: int
    failed: int
    seconds: float
    latencies_ms: list[float]
    tokens: int = 0

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)


def matmul_peak(n: int = 1024, reps: int = 10) -> float:
    """fp32 matmul FLOP/s on the threads torch uses now (best of reps)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(reps))
    return 2 * n**3 / best


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def texts(n: int = 512) -> list[str]:
    with open(REPO_ROOT / "datasets" / "banking77" / "test.csv", newline="", encoding="utf-8") as f:
        rows = [r["text"] for r in csv.DictReader(f)]
    return rows[:n]


def labels() -> list[str]:
    with open(REPO_ROOT / "datasets" / "banking77" / "train.csv", newline="", encoding="utf-8") as f:
        return sorted({r["label"] for r in csv.DictReader(f)})


def make_adapter(out: Path, seed: int) -> tuple[str, Path]:
    """A LoRA adapter (r=8 on query/value, random B so it changes the output) in the kernel's format."""
    from services.kernel import modeling
    from services.kernel.goal import ApproachSpec

    names = labels()
    model, _ = modeling.build_classifier(BASE, names, ApproachSpec(), seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    modeling.save_adapter(model, names, modeling.AdapterMeta("lora", BASE, 64), out)
    return modeling.adapter_digest(out), out


def slot(digest: str, folder: Path, role: Role = "champion", percent: int = 100) -> Slot:
    return Slot(digest, role, percent, f"bench-{role}", "sha256:" + "0" * 64, "sha256:" + "1" * 64, "bench", folder)


def route(goal: str, champion: Slot, candidate: Slot | None = None) -> GoalRoute:
    return GoalRoute(goal, champion, candidate, "canary" if candidate else "none", 0.0, frozenset(), False)


class Bench:
    """The shared pool, routing table and the servers the arms talk to."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.pool = AdapterPool(BASE, device="auto", work_dir=work / "pool")
        self.a = make_adapter(work / "a", 1)
        self.b = make_adapter(work / "b", 2)
        self.pool.load(*self.a)
        self.pool.load(*self.b)
        self.routing = RoutingTable()
        self.routing.set(route("one", slot(*self.a)))
        self.routing.set(route("two", slot(*self.a), slot(*self.b, "canary", 10)))
        self.texts = texts()
        self.servers: list[InferenceServer] = []
        self.settings = Settings(grpc_tokens=[TOKEN], deployer_address="127.0.0.1:0", state_dir=work / "state",
                                 namespace=f"bench{uuid.uuid4().hex[:8]}.")

    def server(self, config: ServingConfig, log_sink: LogSink | None = None) -> InferenceClient:
        s = build_server(self.settings, self.routing, self.pool, NoObserver(), log_sink or NullLog(), config=config)
        s.start()
        self.servers.append(s)
        return InferenceClient(grpc.insecure_channel(f"127.0.0.1:{s.port}"))

    def close(self) -> None:
        for s in self.servers:
            s.stop(5)


def closed_loop(client: InferenceClient, goal: str, corpus: list[str], concurrency: int, seconds: float,
                metadata: tuple[tuple[str, str], ...] = AUTH) -> Arm:
    """C threads asking back to back for `seconds`; latencies of every completed request."""
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    failed = [0] * concurrency
    end = time.perf_counter() + seconds

    def run(i: int) -> None:
        k = i
        while time.perf_counter() < end:
            req = pb.PredictRequest(goal=goal, text=corpus[k % len(corpus)])
            k += concurrency
            t = time.perf_counter()
            try:
                client.Predict(req, metadata=metadata, timeout=30)
                lat[i].append((time.perf_counter() - t) * 1000)
            except grpc.RpcError:
                failed[i] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for xs in lat for x in xs]
    return Arm(len(flat), sum(failed), time.perf_counter() - started, flat)


def interleaved(arms: dict[str, Callable[[], Arm]], reps: int) -> dict[str, list[Arm]]:
    """Run each arm once per repetition, in order, after one warm-up round."""
    for fn in arms.values():
        fn()
    out: dict[str, list[Arm]] = {k: [] for k in arms}
    for _ in range(reps):
        for name, fn in arms.items():
            out[name].append(fn())
    return out


def sequential(call: Callable[[str], object], corpus: list[str], n: int) -> Arm:
    """n calls one after another (concurrency 1); latency of each."""
    lat: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        call(corpus[i % len(corpus)])
        lat.append((time.perf_counter() - t) * 1000)
    return Arm(n, 0, time.perf_counter() - started, lat)


def s1(b: Bench, batching: InferenceClient, p: Profile) -> dict[str, object]:
    """gRPC (auth, validation, batcher, policy) over an in-process model call, concurrency 1."""
    digest = b.a[0]
    runs = interleaved({
        "in_process": lambda: sequential(lambda t: b.pool.predict(digest, [t]), b.texts, p["s1_requests"]),
        "grpc": lambda: sequential(lambda t: batching.Predict(pb.PredictRequest(goal="one", text=t), metadata=AUTH,
                                                                timeout=30), b.texts, p["s1_requests"]),
    }, p["reps"])
    d50 = [g.p50 - i.p50 for g, i in zip(runs["grpc"], runs["in_process"], strict=True)]
    d99 = [g.p99 - i.p99 for g, i in zip(runs["grpc"], runs["in_process"], strict=True)]
    return {"delta_p50_ms": spread(d50), "delta_p99_ms": spread(d99),
            "in_process_p50_ms": spread([a.p50 for a in runs["in_process"]]),
            "grpc_p50_ms": spread([a.p50 for a in runs["grpc"]]),
            "must": "delta p50 <= 0.5 ms, delta p99 <= 2 ms",
            "pass": statistics.median(d50) <= 0.5 and statistics.median(d99) <= 2.0}


def ratio_arms(base: Callable[[], Arm], arm: Callable[[], Arm], reps: int) -> RatioResult:
    """Throughput and p99 ratios (arm / base) per repetition."""
    runs = interleaved({"base": base, "arm": arm}, reps)
    pairs = list(zip(runs["arm"], runs["base"], strict=True))
    return {"throughput_ratio": spread([a.throughput / x.throughput for a, x in pairs]),
            "p99_ratio": spread([a.p99 / x.p99 for a, x in pairs]),
            "base_rps": spread([x.throughput for x in runs["base"]]),
            "arm_rps": spread([a.throughput for a in runs["arm"]]),
            "base_p99_ms": spread([x.p99 for x in runs["base"]]), "arm_p99_ms": spread([a.p99 for a in runs["arm"]]),
            "failed": sum(a.failed + x.failed for a, x in pairs)}


def s4b(b: Bench, batching: InferenceClient, p: Profile) -> dict[str, object]:
    """Hot-load: from pool.load() of a new adapter until a request is answered by it, under steady load."""
    seen: list[tuple[float, str]] = []
    failed = [0]
    stop = threading.Event()

    def client(i: int) -> None:
        k = i
        while not stop.is_set():
            k += 4
            try:
                r = batching.Predict(pb.PredictRequest(goal="hot", text=b.texts[k % len(b.texts)]), metadata=AUTH, timeout=30)
                seen.append((time.perf_counter(), r.adapter_digest))
            except grpc.RpcError:
                failed[0] += 1

    fresh = [make_adapter(b.work / f"hot{i}", 100 + i) for i in range(p["hot_loads"])]
    current = b.a
    b.routing.set(route("hot", slot(*current)))
    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    until_served: list[float] = []
    load_ms: list[float] = []
    for new in fresh:
        time.sleep(0.3)
        t0 = time.perf_counter()
        b.pool.load(*new)
        b.routing.set(route("hot", slot(*new)))
        load_ms.append((time.perf_counter() - t0) * 1000)
        while not any(d == new[0] and t > t0 for t, d in list(seen[-64:])):
            time.sleep(0.0005)
        first = min(t for t, d in list(seen) if d == new[0] and t > t0)
        until_served.append((first - t0) * 1000)
        if current != b.a:
            b.pool.unload(current[0])
        current = new
    stop.set()
    for t in threads:
        t.join()
    return {"until_served_ms": spread(until_served), "load_ms": spread(load_ms), "failed": failed[0],
            "requests": len(seen), "must": "<= 200 ms, 0 failed",
            "pass": statistics.median(until_served) <= 200 and failed[0] == 0}


def run(profile: str = "smoke", out: Path | None = None) -> dict[str, object]:
    """Every serving benchmark; writes one JSON and returns it."""
    p = PROFILES[profile]
    torch.set_num_threads(1)
    peak = matmul_peak()
    with tempfile.TemporaryDirectory() as work:
        b = Bench(Path(work))
        try:
            one = b.server(ServingConfig(max_batch_size=1, max_wait_ms=0))
            batching = b.server(ServingConfig(max_batch_size=16, max_wait_ms=2.0))
            result: dict[str, object] = {"profile": profile, "torch_threads": 1, "device": b.pool.device,
                                         "matmul_peak_gflops": peak / 1e9, "s1": s1(b, batching, p)}

            def loop(client: InferenceClient, goal: str) -> Callable[[], Arm]:
                return lambda: closed_loop(client, goal, b.texts, 8, p["seconds"])

            result["s3"] = s3 = ratio_arms(loop(one, "one"), loop(batching, "one"), p["reps"])
            result["s4"] = s4 = ratio_arms(loop(batching, "one"), loop(batching, "two"), p["reps"])
            result["s4b"] = s4b(b, batching, p)
            result["s6"] = s6_result = s6(b, loop, p)
            result["s6m"] = s6m_result = s6m(b, p)
        finally:
            b.close()
    _judge(s3, s4, s6_result, s6m_result)
    result["written_to"] = str(write_result("serve", result, out))
    return result


def s6(b: Bench, loop: Callable[[InferenceClient, str], Callable[[], Arm]], p: Profile) -> RatioResult:
    """Inference logging to the real Kafka broker on vs off, concurrency 8."""
    from services.kernel.bus.topics import ensure_topics

    ensure_topics(b.settings)
    config = ServingConfig(max_batch_size=16, max_wait_ms=2.0)
    log = KafkaInferenceLog(b.settings, config, source="bench")
    logged, quiet = b.server(config, log_sink=log), b.server(config)
    r = ratio_arms(loop(quiet, "one"), loop(logged, "one"), p["reps"])
    r["unlogged"] = log.unlogged()
    return r


def s6m(b: Bench, p: Profile) -> RatioResult:
    """Metrics on vs off: two server processes alike but for the meter provider (and /metrics, scraped
    once per repetition as Prometheus would), concurrency 8 from this process."""
    from benchmarks import serve_process
    from services.kernel.metrics import scrape

    config = ServingConfig(max_batch_size=16, max_wait_ms=2.0)
    off, off_client, _ = serve_process.start(b.a[1], config)
    on, on_client, address = serve_process.start(b.a[1], config, with_metrics=True)
    try:
        def scraped() -> Arm:
            arm = closed_loop(on_client, "one", b.texts, 8, p["seconds"])
            scrape(b.settings, address)
            return arm
        return ratio_arms(lambda: closed_loop(off_client, "one", b.texts, 8, p["seconds"]), scraped, p["reps"])
    finally:
        serve_process.stop(off)
        serve_process.stop(on)


def _judge(s3: RatioResult, s4: RatioResult, s6: RatioResult, s6m: RatioResult) -> None:
    s3["must"] = "throughput >= 1.8x, p99 <= 1.5x"
    s3["pass"] = s3["throughput_ratio"]["median"] >= 1.8 and s3["p99_ratio"]["median"] <= 1.5
    s4["must"] = "throughput >= 0.90x, p99 <= 1.15x"
    s4["pass"] = s4["throughput_ratio"]["median"] >= 0.90 and s4["p99_ratio"]["median"] <= 1.15
    s6["must"] = "throughput >= 0.97x"
    s6["pass"] = s6["throughput_ratio"]["median"] >= 0.97
    s6m["must"] = "throughput >= 0.98x"
    s6m["pass"] = s6m["throughput_ratio"]["median"] >= 0.98


def profile_main(run_profile: Callable[[str, Path | None], object], doc: str, argv: list[str] | None = None) -> None:
    """A serving benchmark's command line: --profile smoke|full [--out FILE]; prints the result JSON."""
    import json

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    print(json.dumps(run_profile(args.profile, args.out), indent=2))


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m benchmarks.serve --profile smoke --out FILE."""
    profile_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
