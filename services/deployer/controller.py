"""The rollout controller: observes served requests, drives each goal's state machine, swaps routes.

Order of effects on every decision: swap the RoutingTable first (traffic moves at once), then persist
the state and emit the deployment events (store session + outbox), then unload adapters.

Who persists: a consumer's decision is saved in the consumer's own transaction (the handler saves
`Applied.rollout` and returns `Applied.events`); the observer's and the ticker's decisions go to the
writer thread; an operator's (`apply_now`) is saved before the call returns. Unloads always run on the
writer thread. For a consumer's decision the unload is queued as the decision returns, so it can run
before that transaction commits; that is harmless, as a restart fetches again whatever the store names.

The parts, one concern each (services.deployer.control): `LiveSteps` counts the candidate's current
step, `RolloutRegistry` holds the states and makes the transitions, `Traffic` carries a state to the
routes and the adapter pool, `DurableRollouts` reads and writes the store, `Ticker` and `Writer` are
the two threads. The Controller wires them and is the one surface the rest of the deployer uses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tuneline.events.v1 import events_pb2 as ev

from services.deployer.control.background import WRITE_RETRY, Ticker, Writer, WriterStatus
from services.deployer.control.durable import DurableRollouts
from services.deployer.control.live_steps import LiveSteps
from services.deployer.control.registry import Applied, Decide, RolloutRegistry
from services.deployer.control.traffic import AdapterLoader, Traffic
from services.deployer.domain import rollout as machine
from services.deployer.domain.rollout import Adapter, Rollout, StepStats, Transition
from services.deployer.domain.routing import RoutingTable, Slot
from services.deployer.serving.outcome import ServedOutcome
from services.kernel.artifact_signing import ArtifactVerifier
from services.kernel.blobs import BlobStore
from services.kernel.retry import RetryPolicy
from services.kernel.store import Store

__all__ = ["AdapterLoader", "Applied", "Controller"]
log = logging.getLogger(__name__)


class Controller:
    """Owns every goal's Rollout in memory; the request path and the consumers both go through it."""

    def __init__(self, store: Store, blobs: BlobStore, pool: AdapterLoader, routing: RoutingTable,
                 adapters_dir: Path, clock: Callable[[], float] = time.time,
                 write_retry: RetryPolicy = WRITE_RETRY) -> None:
        self.clock = clock
        # One lock for the states and the step numbers: a counted outcome never falls between a
        # transition's decision and the reset of the step it ended.
        self._lock = threading.RLock()
        self._traffic = Traffic(blobs, pool, routing, adapters_dir)
        self._steps = LiveSteps(self._lock)
        self._registry = RolloutRegistry(self._lock, self._move)
        self._durable = DurableRollouts(store)
        self._writer = Writer(write_retry)
        self._ticker = Ticker(self._judge_all, partial(self._writer.submit, "saving step progress", self.save_progress))

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Restore every goal from the store (re-fetching adapters), then run the writer and the ticker."""
        for r, saved in self._durable.restore():
            self._restore(r, saved)
        self._writer.start()
        self._ticker.start()

    def stop(self) -> None:
        """Stop judging, save progress, finish pending writes, stop the threads."""
        self._ticker.stop()
        self._writer.submit("saving step progress", self.save_progress)
        self._writer.stop()

    def _restore(self, r: Rollout, saved: StepStats | None) -> None:
        for a in (r.champion, r.candidate, r.previous):
            if a is not None:
                try:
                    self._traffic.load(a)
                except Exception:  # one broken artifact must not stop the others serving
                    log.exception("goal %s: could not re-load adapter %s at start-up", r.goal, a.digest)
        with self._lock:
            self._registry.restore(r)
            self._steps.reset(r)  # a restored step in progress counts again (as before the split)
            if saved is not None:
                self._steps.resume(r.goal, saved)
        log.info("goal %s restored: %s (champion %s)", r.goal, r.state, r.champion.digest if r.champion else "-")

    # ------------------------------------------------------------ adapters
    def adapter_dir(self, digest: str) -> Path:
        """Where an adapter's verified files live locally."""
        return self._traffic.adapter_dir(digest)

    def admit_adapter(self, a: Adapter, signature: ev.ArtifactRef, artifacts: ArtifactVerifier) -> Path:
        """Fetch a newly approved adapter, verify its artifact signature and digest, load it into the pool."""
        return self._traffic.admit(a, signature, artifacts)

    def _unload_unused(self, digest: str) -> None:
        if not self._registry.uses(digest):
            self._traffic.unload(digest)

    # ------------------------------------------------------------ queries
    def rollout(self, goal: str) -> Rollout:
        """A goal's current rollout state (NotFound when nothing was ever deployed for it)."""
        return self._registry.require(goal)

    def rollouts_get(self, goal: str) -> Rollout:
        """A goal's rollout state, idle when nothing was deployed for it yet."""
        return self._registry.get_or_idle(goal)

    def reply(self, key: str) -> Applied | None:
        """The result of a transition already decided for this consumer event id (a retried transaction)."""
        return self._registry.reply(key)

    def rollouts(self) -> list[Rollout]:
        """Every goal's rollout state."""
        return self._registry.all()

    def step_stats(self, goal: str) -> StepStats:
        """The candidate's numbers in the current step."""
        return self._steps.snapshot(goal)

    def writer_status(self) -> WriterStatus:
        """Background writes queued, and how many the store has refused past the retry policy."""
        return self._writer.status()

    # ------------------------------------------------------------ transitions
    def transition(self, goal: str, decide: Decide, reply_key: str = "") -> Applied | None:
        """Decide on the current state under the lock, swap the route at once, return what to persist and emit.

        For a consumer, whose transaction persists the result. `reply_key` (a consumer event id) makes a
        retried transaction get the same answer instead of deciding again on a state that already moved.
        """
        with self._lock:
            if reply_key and (done := self._registry.reply(reply_key)) is not None:
                return done
            applied = self._registry.transition(goal, decide, reply_key)
        if applied is not None:
            self._announce(applied)
            self._queue_unloads(applied)
        return applied

    def apply_now(self, goal: str, decide: Decide) -> Applied | None:
        """Decide, swap the route, persist and emit before returning (an operator's command), then unload."""
        applied = self._registry.transition(goal, decide)
        if applied is not None:
            self._announce(applied)
            try:
                self.commit(applied)
            finally:       # traffic has moved either way: the adapters it left must not stay loaded
                self._queue_unloads(applied)
        return applied

    def set_policy(self, goal: str, policy: machine.Policy) -> Rollout | None:
        """Apply a re-applied goal's serving policy to the live route."""
        def decide(r: Rollout) -> Transition | None:
            deployed = self._registry.get(goal) is not None
            return Transition(rollout=r.replace(policy=policy)) if deployed and r.policy != policy else None

        applied = self.transition(goal, decide)
        return applied.rollout if applied else None

    def commit(self, applied: Applied) -> None:
        """Persist a transition decided outside a consumer (observer, ticker, admin) and emit its events."""
        self._durable.commit(applied.rollout, applied.events)

    def save_progress(self) -> None:
        """Save the numbers of every step in progress (the ticker queues this every PERSIST_EVERY_S)."""
        self._durable.save_progress(self._steps.progress())

    def _move(self, before: Rollout, after: Rollout) -> None:
        # Called by the registry under the lock as soon as a state is decided: traffic first.
        self._traffic.route(after)
        if before.step_index != after.step_index or before.state != after.state:
            self._steps.reset(after)

    def _announce(self, applied: Applied) -> None:
        for d in applied.decisions:
            if not isinstance(d, machine.Unload):
                log.info("goal %s: %s %s", applied.rollout.goal, type(d).__name__.lower(), d.adapter.digest)

    def _queue_unloads(self, applied: Applied) -> None:
        for d in applied.decisions:
            if isinstance(d, machine.Unload):
                self._writer.submit(f"unloading {d.digest}", partial(self._unload_unused, d.digest))

    # ------------------------------------------------------------ observer (request path) and ticker
    def on_served(self, goal: str, slot: Slot, outcome: ServedOutcome) -> None:
        """Count a candidate's outcome; a breached threshold moves traffic back before this returns."""
        if self._steps.count(goal, slot, outcome):
            self._judge(goal)

    def note_drift(self, goal: str, digest: str) -> bool:
        """The monitor saw drift on this adapter: its current step cannot advance."""
        with self._lock:
            r = self._registry.get(goal)
            if r is None or r.candidate is None or r.candidate.digest != digest:
                return False
            return self._steps.mark_drift(goal)

    def _judge(self, goal: str) -> None:
        now = self.clock()

        def decide(r: Rollout) -> Transition | None:
            live = self._steps.current(goal)
            if live is None or machine.judge(r, live.snapshot(), now) is None:
                return machine.release_previous(r, now)
            return machine.judge(r, live.snapshot(with_p99=True), now)

        applied = self._registry.transition(goal, decide)
        if applied is not None:
            self._announce(applied)
            self._writer.submit(f"saving goal {goal} ({applied.rollout.state})", partial(self.commit, applied))
            self._queue_unloads(applied)

    def _judge_all(self) -> None:
        for goal in self._registry.goals():
            try:
                self._judge(goal)
            except Exception:  # keep judging the other goals
                log.exception("goal %s: judging the rollout failed", goal)
