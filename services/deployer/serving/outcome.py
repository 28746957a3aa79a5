"""What the server tells the rollout observer about each answered, failed or mirrored request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.deployer.domain.routing import Slot


@dataclass(frozen=True)
class ServedOutcome:
    """One prediction's result; for a mirror, champion_label is what the champion answered."""

    request_id: str
    label: str
    confidence: float
    latency_ms: float
    error: bool
    error_code: str
    champion_label: str | None = None


class ServedObserver(Protocol):
    """Receives every outcome (the rollout state machine counts requests, errors and agreement)."""

    def on_served(self, goal: str, slot: Slot, outcome: ServedOutcome) -> None:
        """Called after each answered or failed request and each mirror prediction; must not block."""


class NoObserver:
    """An observer that ignores everything (benchmarks, tools)."""

    def on_served(self, goal: str, slot: Slot, outcome: ServedOutcome) -> None:
        """Ignore the outcome."""
