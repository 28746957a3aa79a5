"""Every goal's Rollout in memory, and the transitions between them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.deployer.deployment_events import events_for
from services.deployer.domain import rollout as machine
from services.deployer.domain.rollout import Rollout, Transition
from services.kernel.errors import NotFound
from services.kernel.events import Outgoing

# Answers kept for retried consumer transactions: a retry comes within seconds, and 256 decisions
# are far more than a deployer makes in that time.
REPLIES_KEPT = 256

Decide = Callable[[Rollout], Transition | None]


@dataclass(frozen=True)
class Applied:
    """A transition after its routing swap: the events to emit and how fast traffic moved."""

    rollout: Rollout
    decisions: tuple[machine.Decision, ...]
    events: list[Outgoing]
    decision_to_zero_ms: float | None


class RolloutRegistry:
    """Owns every goal's Rollout; a state changes only through `transition`, under the controller's lock.

    `move` is called under the lock with (before, after) as soon as a new state is decided: it swaps
    the route (and resets the step's numbers), so that traffic moves before anything is written.
    """

    def __init__(self, lock: threading.RLock, move: Callable[[Rollout, Rollout], None]) -> None:
        self._lock, self._move = lock, move
        self._rollouts: dict[str, Rollout] = {}
        self._replies: dict[str, Applied] = {}     # consumer event id -> result, for retried transactions

    def transition(self, goal: str, decide: Decide, reply_key: str = "") -> Applied | None:
        """Decide on the current state, move traffic at once, return what to emit (None: nothing to do).

        The result is remembered under `reply_key` (a consumer event id; see `reply`).
        """
        with self._lock:
            t0 = time.perf_counter()
            current = self.get_or_idle(goal)
            t = decide(current)
            if t is None:
                return None
            self._rollouts[goal] = t.rollout
            self._move(current, t.rollout)
            to_zero = (time.perf_counter() - t0) * 1000.0
            applied = Applied(t.rollout, t.decisions, events_for(goal, t.decisions, to_zero), to_zero)
            if reply_key:
                self._replies = {**dict(list(self._replies.items())[-(REPLIES_KEPT - 1):]), reply_key: applied}
        return applied

    def restore(self, r: Rollout) -> None:
        """Take a state saved before a restart as the goal's current one, and move traffic to it."""
        with self._lock:
            self._rollouts[r.goal] = r
            self._move(Rollout(goal=r.goal), r)

    def get(self, goal: str) -> Rollout | None:
        """A goal's current state, or None when nothing was ever deployed for it."""
        return self._rollouts.get(goal)

    def get_or_idle(self, goal: str) -> Rollout:
        """A goal's current state, idle when nothing was deployed for it yet."""
        return self._rollouts.get(goal) or Rollout(goal=goal)

    def require(self, goal: str) -> Rollout:
        """A goal's current state; NotFound when nothing was ever deployed for it."""
        r = self._rollouts.get(goal)
        if r is None:
            raise NotFound(f"goal {goal!r} has no deployment", hint="list goals with `tuneline deployments`")
        return r

    def reply(self, key: str) -> Applied | None:
        """The result of a transition already decided for this consumer event id: a retried transaction
        gets the same answer instead of a new decision on a state that already moved."""
        return self._replies.get(key)

    def all(self) -> list[Rollout]:
        """Every goal's state, by goal name."""
        return [self._rollouts[g] for g in sorted(self._rollouts)]

    def goals(self) -> list[str]:
        """Every goal with a state."""
        return list(self._rollouts)

    def uses(self, digest: str) -> bool:
        """Whether any goal still needs this adapter loaded."""
        with self._lock:
            return any(digest in r.loaded() for r in self._rollouts.values())
