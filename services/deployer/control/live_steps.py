"""The candidate's numbers in the current step of each goal, counted on the request path."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from services.deployer.domain.rollout import Rollout, StepStats
from services.deployer.domain.routing import Slot
from services.deployer.serving.outcome import ServedOutcome

# Latencies kept per step for its p99: 20,000 Python floats (about 0.6 MB a goal) are 100 times the
# default min_requests_per_step of 200; past that, the step's p99 is that of its first 20,000 answers.
LATENCIES_KEPT = 20_000


@dataclass
class LiveStats:
    """The candidate's numbers in the current step, updated on the request path."""

    deployment_id: str
    step_index: int
    slow_ms: float
    base: StepStats = field(default_factory=StepStats)
    latencies: list[float] = field(default_factory=list)

    def add(self, o: ServedOutcome) -> None:
        """Count one outcome."""
        b = self.base
        compared = o.champion_label is not None and not o.error
        self.base = b.replace(
            requests=b.requests + 1, errors=b.errors + int(o.error),
            slow=b.slow + int(not o.error and o.latency_ms > self.slow_ms),
            compared=b.compared + int(compared), agreed=b.agreed + int(compared and o.label == o.champion_label))
        if not o.error and len(self.latencies) < LATENCIES_KEPT:
            self.latencies.append(o.latency_ms)

    def snapshot(self, with_p99: bool = False) -> StepStats:
        """The numbers as the state machine reads them (p99 only when asked: it sorts)."""
        if not with_p99 or not self.latencies:
            return self.base
        ordered = sorted(self.latencies)
        return self.base.replace(p99_ms=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))])


@dataclass(frozen=True)
class Progress:
    """One goal's step numbers as the store keeps them across a restart."""

    goal: str
    deployment_id: str
    step_index: int
    stats: StepStats


class LiveSteps:
    """Every goal's LiveStats: one per candidate step in progress, none otherwise.

    It shares the controller's lock with the registry, so that a counted outcome never falls between
    a transition's decision and the reset of the step it ended.
    """

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._stats: dict[str, LiveStats] = {}

    def reset(self, r: Rollout) -> None:
        """Start counting the rollout's current step afresh (or stop counting: no candidate on trial)."""
        with self._lock:
            if r.in_progress and r.candidate is not None:
                self._stats[r.goal] = LiveStats(r.candidate.deployment_id, r.step_index, r.plan.latency_p99_ms)
            else:
                self._stats.pop(r.goal, None)

    def resume(self, goal: str, saved: StepStats) -> None:
        """Carry on from the numbers saved before a restart."""
        with self._lock:
            if (live := self._stats.get(goal)) is not None:
                live.base = saved

    def count(self, goal: str, slot: Slot, outcome: ServedOutcome) -> bool:
        """Count an outcome of the goal's candidate in this step; False when it is not one (nothing to judge)."""
        with self._lock:
            live = self._stats.get(goal)
            if live is None or slot.role == "champion" or slot.deployment_id != live.deployment_id:
                return False
            live.add(outcome)
            return True

    def mark_drift(self, goal: str) -> bool:
        """The current step has seen drift: it cannot advance (False when no step is in progress)."""
        with self._lock:
            live = self._stats.get(goal)
            if live is None:
                return False
            live.base = live.base.replace(drift=True)
            return True

    def current(self, goal: str) -> LiveStats | None:
        """The goal's step in progress, if any (read under the lock by the judging transition)."""
        return self._stats.get(goal)

    def snapshot(self, goal: str) -> StepStats:
        """The candidate's numbers in the current step, p99 included (empty when none is in progress)."""
        live = self._stats.get(goal)
        return live.snapshot(with_p99=True) if live else StepStats()

    def progress(self) -> list[Progress]:
        """Every step in progress, for the store."""
        with self._lock:
            return [Progress(g, s.deployment_id, s.step_index, s.snapshot(with_p99=True)) for g, s in self._stats.items()]
