"""The rollout controller: observes served requests, drives each goal's state machine, swaps routes.

Order of effects on every decision: swap the RoutingTable first (traffic moves at once), then persist
the state and emit the deployment events (store session + outbox), then unload adapters.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from services.deployer.domain import rollout as machine
from services.deployer.domain.rollout import Adapter, Rollout, StepStats, Transition
from services.deployer.domain.routing import GoalRoute, RoutingTable, Slot
from services.deployer.deployment_events import events_for
from services.deployer.serving.outcome import ServedOutcome
from services.deployer.store import load_progress, load_rollouts, save_progress, save_rollout
from services.kernel.blobs import BlobStore
from services.kernel.errors import NotFound
from services.kernel.events import Outgoing
from services.kernel.outbox import emit
from services.kernel.store import Store
from tuneline.events.v1 import events_pb2 as ev

log = logging.getLogger(__name__)
TICK_S = 0.2            # time-based advances and timeouts are judged this often
PERSIST_EVERY_S = 2.0   # step progress reaches the store at least this often
LATENCIES_KEPT = 20_000


class AdapterLoader(Protocol):
    """The part of the serving AdapterPool the controller uses."""

    def load(self, digest: str, adapter_dir: Path) -> object: ...

    def unload(self, digest: str) -> object: ...


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
        self.base = b.model_copy(update={
            "requests": b.requests + 1, "errors": b.errors + int(o.error),
            "slow": b.slow + int(not o.error and o.latency_ms > self.slow_ms),
            "compared": b.compared + int(compared), "agreed": b.agreed + int(compared and o.label == o.champion_label)})
        if not o.error and len(self.latencies) < LATENCIES_KEPT:
            self.latencies.append(o.latency_ms)

    def snapshot(self, with_p99: bool = False) -> StepStats:
        """The numbers as the state machine reads them (p99 only when asked: it sorts)."""
        if not with_p99 or not self.latencies:
            return self.base
        ordered = sorted(self.latencies)
        return self.base.model_copy(update={"p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]})


@dataclass(frozen=True)
class Applied:
    """A transition after its routing swap: the events to emit and how fast traffic moved."""

    rollout: Rollout
    decisions: tuple[machine.Decision, ...]
    events: list[Outgoing]
    decision_to_zero_ms: float | None


class Controller:
    """Owns every goal's Rollout in memory; the request path and the consumers both go through it."""

    def __init__(self, store: Store, blobs: BlobStore, pool: AdapterLoader, routing: RoutingTable,
                 adapters_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.store, self.blobs, self.pool, self.routing = store, blobs, pool, routing
        self.adapters_dir, self.clock = adapters_dir, clock
        self._lock = threading.RLock()
        self._rollouts: dict[str, Rollout] = {}
        self._stats: dict[str, LiveStats] = {}
        self._replies: dict[str, Applied] = {}     # consumer event id -> result, for retried transactions
        self._work: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Restore every goal from the store (re-fetching adapters), then run the ticker and writer."""
        with self.store.session() as s:
            rollouts = load_rollouts(s)
        for r in rollouts:
            self._restore(r)
        for name, target in (("rollout-ticker", self._tick_loop), ("rollout-writer", self._write_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Save progress, finish pending writes, stop the threads."""
        self._stop.set()
        self._save_all_progress()
        self._work.put(None)
        for t in self._threads:
            t.join(timeout=10)

    def _restore(self, r: Rollout) -> None:
        for a in (r.champion, r.candidate, r.previous):
            if a is not None:
                try:
                    self.load_adapter(a)
                except Exception:  # noqa: BLE001 - one broken artifact must not stop the others serving
                    log.exception("goal %s: could not re-load adapter %s at start-up", r.goal, a.digest)
        with self._lock:
            self._rollouts[r.goal] = r
            self._reset_stats(r)
            if r.in_progress and r.candidate is not None:
                with self.store.session() as s:
                    saved = load_progress(s, r.goal, r.candidate.deployment_id, r.step_index)
                if saved is not None:
                    self._stats[r.goal].base = saved
            self.routing.set(self._route(r))
        log.info("goal %s restored: %s (champion %s)", r.goal, r.state, r.champion.digest if r.champion else "-")

    # ------------------------------------------------------------ adapters
    def adapter_dir(self, digest: str) -> Path:
        """Where an adapter's verified files live locally."""
        return self.adapters_dir / digest.removeprefix("sha256:")

    def load_adapter(self, a: Adapter) -> Path:
        """Fetch (verifying the digest) and load an adapter into the pool."""
        ref = ev.ArtifactRef(digest=a.digest, uri=a.uri, media_type=a.media_type, size_bytes=a.size_bytes)
        folder = self.blobs.fetch_tree(ref, self.adapter_dir(a.digest))
        self.pool.load(a.digest, folder)
        return folder

    def _unload_unused(self, digest: str) -> None:
        with self._lock:
            used = any(digest in r.loaded() for r in self._rollouts.values())
        if not used:
            self.pool.unload(digest)

    # ------------------------------------------------------------ queries
    def rollout(self, goal: str) -> Rollout:
        """A goal's current rollout state (NotFound when nothing was ever deployed for it)."""
        r = self._rollouts.get(goal)
        if r is None:
            raise NotFound(f"goal {goal!r} has no deployment", hint="list goals with `tuneline deployments`")
        return r

    def rollouts_get(self, goal: str) -> Rollout:
        """A goal's rollout state, idle when nothing was deployed for it yet."""
        return self._rollouts.get(goal) or Rollout(goal=goal)

    def reply(self, key: str) -> Applied | None:
        """The result of a transition already decided for this consumer event id (a retried transaction)."""
        return self._replies.get(key)

    def rollouts(self) -> list[Rollout]:
        """Every goal's rollout state."""
        return [self._rollouts[g] for g in sorted(self._rollouts)]

    def step_stats(self, goal: str) -> StepStats:
        """The candidate's numbers in the current step."""
        live = self._stats.get(goal)
        return live.snapshot(with_p99=True) if live else StepStats()

    # ------------------------------------------------------------ transitions
    def transition(self, goal: str, decide: Callable[[Rollout], Transition | None],
                   reply_key: str = "") -> Applied | None:
        """Decide on the current state under the lock, swap the route at once, return what to emit.

        `reply_key` (a consumer event id) makes a retried transaction get the same answer instead of
        deciding again on a state that already moved.
        """
        with self._lock:
            if reply_key and reply_key in self._replies:
                return self._replies[reply_key]
            t0 = time.perf_counter()
            current = self._rollouts.get(goal) or Rollout(goal=goal)
            t = decide(current)
            if t is None:
                return None
            self._rollouts[goal] = t.rollout
            self.routing.set(self._route(t.rollout))
            to_zero = (time.perf_counter() - t0) * 1000.0
            if current.step_index != t.rollout.step_index or current.state != t.rollout.state:
                self._reset_stats(t.rollout)
            applied = Applied(t.rollout, t.decisions, events_for(goal, t.decisions, to_zero), to_zero)
            if reply_key:
                self._replies = {**dict(list(self._replies.items())[-255:]), reply_key: applied}
        self._after(t)
        return applied

    def set_policy(self, goal: str, policy: machine.Policy) -> Rollout | None:
        """Apply a re-applied goal's serving policy to the live route."""
        applied = self.transition(goal, lambda r: Transition(rollout=r.model_copy(update={"policy": policy}))
                                  if r.goal in self._rollouts and r.policy != policy else None)
        return applied.rollout if applied else None

    def _after(self, t: Transition) -> None:
        for d in t.decisions:
            if isinstance(d, machine.Unload):
                self._work.put(lambda digest=d.digest: self._unload_unused(digest))
            else:
                log.info("goal %s: %s %s", t.rollout.goal, type(d).__name__.lower(), d.adapter.digest)

    def commit(self, applied: Applied) -> None:
        """Persist a transition decided outside a consumer (observer, ticker, admin) and emit its events."""
        def work(s: Session) -> None:
            save_rollout(s, applied.rollout)
            for out in applied.events:
                emit(s, out)
        self.store.run(work)

    def _reset_stats(self, r: Rollout) -> None:
        if r.in_progress and r.candidate is not None:
            self._stats[r.goal] = LiveStats(r.candidate.deployment_id, r.step_index, r.plan.latency_p99_ms)
        else:
            self._stats.pop(r.goal, None)

    def _route(self, r: Rollout) -> GoalRoute:
        champ_pct = 100 - r.candidate_percent
        champion = self._slot(r.champion, "champion", champ_pct) if r.champion else None
        candidate, mode = None, "none"
        if r.in_progress and r.candidate is not None:
            mode = "canary" if r.state == "canary" else "mirror"
            candidate = self._slot(r.candidate, mode, r.candidate_percent)
        return GoalRoute(goal=r.goal, champion=champion, candidate=candidate, mode=mode,
                         escalate_below_confidence=r.policy.escalate_below_confidence,
                         blocked_labels=frozenset(r.policy.blocked_labels), log_text=r.policy.log_text)

    def _slot(self, a: Adapter, role: str, percent: int) -> Slot:
        return Slot(digest=a.digest, role=role, percent=percent, deployment_id=a.deployment_id,
                    dataset_version=a.dataset_version, goal_version=a.goal_version, eval_id=a.eval_id,
                    adapter_dir=self.adapter_dir(a.digest), traceparent=a.traceparent)

    # ------------------------------------------------------------ observer (request path)
    def on_served(self, goal: str, slot: Slot, outcome: ServedOutcome) -> None:
        """Count a candidate's outcome; a breached threshold moves traffic back before this returns."""
        with self._lock:
            live = self._stats.get(goal)
            if live is None or slot.role == "champion" or slot.deployment_id != live.deployment_id:
                return
            live.add(outcome)
        self._judge(goal)

    def note_drift(self, goal: str, digest: str) -> bool:
        """The monitor saw drift on this adapter: its current step cannot advance."""
        with self._lock:
            r, live = self._rollouts.get(goal), self._stats.get(goal)
            if r is None or live is None or r.candidate is None or r.candidate.digest != digest:
                return False
            live.base = live.base.model_copy(update={"drift": True})
            return True

    def _judge(self, goal: str) -> None:
        now = self.clock()

        def decide(r: Rollout) -> Transition | None:
            live = self._stats.get(goal)
            if live is None or machine.judge(r, live.snapshot(), now) is None:
                return machine.release_previous(r, now)
            return machine.judge(r, live.snapshot(with_p99=True), now)

        applied = self.transition(goal, decide)
        if applied is not None:
            self._work.put(lambda: self.commit(applied))

    # ------------------------------------------------------------ background threads
    def _tick_loop(self) -> None:
        last_save = time.monotonic()
        while not self._stop.wait(TICK_S):
            for goal in list(self._rollouts):
                try:
                    self._judge(goal)
                except Exception:  # noqa: BLE001 - keep judging the other goals
                    log.exception("goal %s: judging the rollout failed", goal)
            if time.monotonic() - last_save >= PERSIST_EVERY_S:
                self._work.put(self._save_all_progress)
                last_save = time.monotonic()

    def _write_loop(self) -> None:
        while (job := self._work.get()) is not None:
            try:
                job()
            except Exception:  # noqa: BLE001 - retried: the state stays in memory and is saved again
                log.exception("deployer: background write failed; retrying in 1 s")
                time.sleep(1.0)
                self._work.put(job)

    def _save_all_progress(self) -> None:
        with self._lock:
            items = [(g, s.deployment_id, s.step_index, s.snapshot(with_p99=True)) for g, s in self._stats.items()]
        if items:
            self.store.run(lambda s: [save_progress(s, *item) for item in items])
