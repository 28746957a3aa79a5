"""`tuneline status` views: consumer lag per group, the deployments' traffic split, and each service's headline metrics."""

from __future__ import annotations

import contextlib
import time

import grpc
from confluent_kafka import KafkaException
from prometheus_client.samples import Sample
from rich.console import Console
from rich.table import Table
from tuneline.serving.v1 import inference_pb2 as pb
from tuneline.serving.v1 import inference_pb2_grpc as pb_grpc

from services.kernel import grpc_tls
from services.kernel.bus.lag import consumer_lag
from services.kernel.errors import TransientError
from services.kernel.ids import short
from services.kernel.metrics import read_samples, sample_total, scrape
from services.kernel.runtime import metrics_endpoint
from services.kernel.settings import Settings


def print_lag(console: Console, settings: Settings) -> None:
    """Lag of each service's consumer group over all Tuneline topics."""
    try:
        lags = consumer_lag(settings)
    except KafkaException as err:
        console.print(f"Kafka at {settings.bootstrap} does not answer: {err}")
        return
    table = Table("consumer group", "lag (events)")
    for group, lag in lags.items():
        table.add_row(group, str(lag))
    console.print(table)


def print_deployments(console: Console, settings: Settings) -> None:
    """Goals, their deployments and traffic split, from the deployer's Admin API."""
    try:
        with grpc_tls.channel(settings, settings.deployer_address) as channel:
            admin_stub = pb_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]  # generated gRPC code, unannotated
            reply = admin_stub.ListDeployments(
                pb.ListDeploymentsRequest(), metadata=grpc_tls.bearer(settings), timeout=5)
    except grpc.RpcError as err:
        console.print(f"deployer at {settings.deployer_address}: {err.code().name}")
        return
    table = Table("goal", "state", "strategy", "adapters (traffic)")
    for d in reply.deployments:
        slots = ", ".join(f"{s.role} {short(s.adapter_digest)} {s.traffic_percent}%" for s in d.slots)
        table.add_row(d.goal, d.state, d.strategy, slots)
    console.print(table)
    if reply.unlogged_predictions:
        console.print(f"[yellow]{reply.unlogged_predictions} predictions could not be logged to Kafka[/]")


def upper_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The smallest bucket bound under which a share q of a histogram's observations fall (cumulative `le` buckets)."""
    total = max((count for _, count in buckets), default=0.0)
    for bound, count in sorted(buckets):
        if total and count >= q * total:
            return bound
    return float("nan")


SERVED = "tuneline_serving_request_duration_seconds"


def _served(samples: list[Sample]) -> tuple[float, float, dict[float, float]]:
    """Requests answered OK, all requests, and the latency histogram's cumulative buckets, over every label set."""
    buckets: dict[float, float] = {}
    for x in samples:
        if x.name == f"{SERVED}_bucket":
            bound = float(x.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + x.value
    return sample_total(samples, f"{SERVED}_count", status="OK"), sample_total(samples, f"{SERVED}_count"), buckets


def _p99(buckets: list[tuple[float, float]]) -> str:
    bound = upper_quantile(buckets, 0.99)
    if bound == float("inf"):  # beyond the largest bucket: say which
        return f"p99 > {max(b for b, _ in buckets if b != bound) * 1000:g} ms"
    return f"p99 ≤ {bound * 1000:g} ms"


def headline(text: str, before: str | None = None, seconds: float = 0.0) -> str:
    """The few numbers an operator looks at first, from one process's /metrics text.

    With `before`, a scrape of the same process `seconds` earlier, the request rate and the p99 are those of
    that interval (what the process does now); without it, totals and the p99 since the process started.
    """
    samples = read_samples(text)
    parts = []
    if any(x.name == f"{SERVED}_count" for x in samples):
        ok, every, buckets = _served(samples)
        parts.append(f"{ok:.0f} answered, {every - ok:.0f} failed")
        if before is not None and seconds > 0:
            ok0, every0, buckets0 = _served(read_samples(before))
            failed = (every - every0) - (ok - ok0)
            recent = [(b, n - buckets0.get(b, 0.0)) for b, n in buckets.items()]
            p99 = _p99(recent) if every > every0 else "idle"
            parts.append(f"now {(every - every0) / seconds:.1f} req/s ({failed / seconds:.1f} failed/s), {p99}")
        else:
            parts.append(_p99(list(buckets.items())))
    lags = [x.value for x in samples if x.name == "tuneline_bus_consumer_lag"]
    if lags:
        parts.append(f"max consumer lag {max(lags):.0f}")
    dead = sample_total(samples, "tuneline_bus_dead_letters_total")
    if dead:
        parts.append(f"[yellow]{dead:.0f} dead letters[/]")
    return "; ".join(parts) or "-"


def print_metrics(console: Console, settings: Settings, services: tuple[str, ...], window_s: float = 2.0) -> None:
    """Each running service's /metrics address and its headline numbers, rates over a `window_s` interval."""
    table = Table("service", "/metrics", "headline")
    first: dict[str, tuple[float, str]] = {}
    addresses = {service: metrics_endpoint(settings, service) for service in services}
    for service, address in addresses.items():
        if address and window_s > 0:
            with contextlib.suppress(TransientError):  # reported by the second scrape
                first[service] = (time.monotonic(), scrape(settings, address, timeout_s=3))
    if first:
        time.sleep(window_s)  # the interval the rates are measured over, not a wait for anything
    for service, address in addresses.items():
        if not address:
            table.add_row(service, "-", "-")
            continue
        try:
            text = scrape(settings, address, timeout_s=3)
        except TransientError as err:
            table.add_row(service, address, f"[red]{err}[/]")
            continue
        at, before = first.get(service, (0.0, None))
        table.add_row(service, address, headline(text, before, time.monotonic() - at if before is not None else 0.0))
    console.print(table)
