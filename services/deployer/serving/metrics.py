"""The deployer's instruments (docs/metrics.md): serving latency by goal, adapter, variant and status; batches, queue; rollouts."""

from __future__ import annotations

from collections.abc import Iterable

from services.deployer.domain.routing import RoutingTable
from services.kernel.metrics import Attributes, GaugeSet, meter, short_digest

CALL_DURATION = meter().create_histogram(
    "rpc.server.call.duration", unit="s", description="gRPC calls served, by method and status code")
REQUEST_DURATION = meter().create_histogram(
    "tuneline.serving.request.duration", unit="s",
    description="Predictions answered (count) and their latency from admission to answer, by goal, adapter, variant and status")
BATCH_SIZE = meter().create_histogram("tuneline.serving.batch.size", unit="{text}", description="Texts per batch run on the model")
REFUSAL_REASONS = ("queue_full", "draining", "adapter_not_loaded")
REFUSALS = meter().create_counter(
    "tuneline.serving.refusals", unit="{request}", description="Predictions refused before reaching a model, by reason")
QUEUE_DEPTH = GaugeSet("tuneline.serving.queue.depth", "{text}", "Texts waiting for the model")
UNLOGGED = GaugeSet("tuneline.serving.inference_log.unlogged", "{record}",
                    "Predictions the inference log could not deliver to the bus")
TRAFFIC_SHARE = GaugeSet("tuneline.rollout.traffic.share", "1", "Share of a goal's live traffic each variant answers")
STEP = GaugeSet("tuneline.rollout.step", "{step}", "The canary step a goal's rollout is in (0: none in progress)")


def declare() -> None:
    """Export the refusal counters at zero from the start, so a dashboard and an alert see them before the first refusal."""
    for reason in REFUSAL_REASONS:
        REFUSALS.add(0, {"reason": reason})


def served(goal: str, digest: str, variant: str, status: str, seconds: float) -> None:
    """One prediction answered (status OK) or failed (its gRPC status name)."""
    REQUEST_DURATION.record(seconds, {"goal": goal, "adapter": short_digest(digest), "variant": variant, "status": status})


def traffic_shares(routing: RoutingTable) -> Iterable[tuple[float, Attributes]]:
    """What each slot of each goal answers now: the canary its percent, the champion the rest (a mirror answers none)."""
    for goal in routing.goals():
        route = routing.get(goal)
        if route is None:
            continue
        canary = route.candidate if route.mode == "canary" else None
        share = canary.percent / 100 if canary is not None else 0.0
        if canary is not None:
            yield share, {"goal": goal, "variant": "canary", "adapter": short_digest(canary.digest)}
        if route.champion is not None:
            yield 1.0 - share, {"goal": goal, "variant": "champion", "adapter": short_digest(route.champion.digest)}
