"""`tuneline status` views: consumer lag per group, the deployments' traffic split, and each service's headline metrics."""

from __future__ import annotations

import grpc
from confluent_kafka import KafkaException
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


def headline(text: str) -> str:
    """The few numbers an operator looks at first, from one process's /metrics text."""
    samples = read_samples(text)
    parts = []
    served = "tuneline_serving_request_duration_seconds_count"
    if any(x.name == served for x in samples):
        ok, every = sample_total(samples, served, status="OK"), sample_total(samples, served)
        buckets: dict[float, float] = {}
        for x in samples:
            if x.name == "tuneline_serving_request_duration_seconds_bucket":
                bound = float(x.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + x.value
        p99 = upper_quantile(list(buckets.items()), 0.99)
        parts.append(f"{ok:.0f} answered, {every - ok:.0f} failed, p99 ≤ {p99 * 1000:g} ms")
    lags = [x.value for x in samples if x.name == "tuneline_bus_consumer_lag"]
    if lags:
        parts.append(f"max consumer lag {max(lags):.0f}")
    dead = sample_total(samples, "tuneline_bus_dead_letters_total")
    if dead:
        parts.append(f"[yellow]{dead:.0f} dead letters[/]")
    return "; ".join(parts) or "-"


def print_metrics(console: Console, settings: Settings, services: tuple[str, ...]) -> None:
    """Each running service's /metrics address and its headline numbers."""
    table = Table("service", "/metrics", "headline")
    for service in services:
        address = metrics_endpoint(settings, service)
        if not address:
            table.add_row(service, "-", "-")
            continue
        try:
            table.add_row(service, address, headline(scrape(settings, address, timeout_s=3)))
        except TransientError as err:
            table.add_row(service, address, f"[red]{err}[/]")
    console.print(table)
