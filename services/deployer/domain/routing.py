"""Which adapter answers a request: one GoalRoute per goal, swapped atomically as a whole."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from services.kernel.errors import InvalidInput, NotFound

Role = Literal["champion", "canary", "mirror"]
Mode = Literal["canary", "mirror", "none"]

ROLES: frozenset[str] = frozenset({"champion", "canary", "mirror"})
MODES: frozenset[str] = frozenset({"canary", "mirror", "none"})


@dataclass(frozen=True)
class Slot:
    """One adapter in a goal's route and the share of traffic it answers."""

    digest: str
    role: Role
    percent: int
    deployment_id: str
    dataset_version: str
    goal_version: str
    eval_id: str
    adapter_dir: Path
    traceparent: str = ""  # the approval's trace; predictions served by this slot link to it

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInput(f"slot role {self.role!r} is not one of {sorted(ROLES)}")
        if not 0 <= self.percent <= 100:
            raise InvalidInput(f"slot percent {self.percent} is outside 0..100")


@dataclass(frozen=True)
class GoalRoute:
    """Everything the server needs to answer for one goal: slots, mode and the goal's policy."""

    goal: str
    champion: Slot | None
    candidate: Slot | None
    mode: Mode
    escalate_below_confidence: float
    blocked_labels: frozenset[str]
    log_text: bool
    log_retention_days: int = 30

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"route mode {self.mode!r} is not one of {sorted(MODES)}")


def bucket(request_id: str) -> int:
    """Stable traffic bucket 0..99 of a request id (first 8 bytes of its sha256, mod 100)."""
    head = hashlib.sha256(request_id.encode("utf-8")).digest()[:8]
    return int.from_bytes(head, "big") % 100


def pick(route: GoalRoute, request_id: str) -> tuple[Slot, Slot | None]:
    """The slot that answers `request_id` and the slot that shadows it (mirror mode) or None."""
    champion, candidate = route.champion, route.candidate
    if candidate is not None and route.mode == "canary" and bucket(request_id) < candidate.percent:
        return candidate, None
    if champion is None:
        raise NotFound(f"goal {route.goal!r} has no serving adapter",
                       hint="wait for an approved adapter or check `tuneline deployments`")
    if candidate is not None and route.mode == "mirror":
        return champion, candidate
    return champion, None


class RoutingTable:
    """Thread-safe map goal -> GoalRoute; readers see either the old or the new route, never a mix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, GoalRoute] = {}

    def set(self, route: GoalRoute) -> None:
        """Replace the goal's whole route in one step."""
        with self._lock:
            self._routes = {**self._routes, route.goal: route}

    def remove(self, goal: str) -> None:
        """Stop serving a goal."""
        with self._lock:
            self._routes = {k: v for k, v in self._routes.items() if k != goal}

    def get(self, goal: str) -> GoalRoute | None:
        """The goal's current route, or None."""
        return self._routes.get(goal)

    def choose(self, goal: str, request_id: str) -> tuple[Slot, Slot | None]:
        """(served slot, mirror slot or None) for a request; NotFound when nothing serves the goal."""
        route = self._routes.get(goal)
        if route is None:
            raise NotFound(f"goal {goal!r} is not deployed",
                           hint="list deployed goals with `tuneline deployments`")
        return pick(route, request_id)

    def goals(self) -> list[str]:
        """Names of the goals that have a route."""
        return sorted(self._routes)
