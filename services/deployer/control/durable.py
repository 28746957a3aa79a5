"""The rollout state in the store: restored at start-up, saved with the deployment events it announces."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.deployer.control.live_steps import Progress
from services.deployer.domain.rollout import Rollout, StepStats
from services.deployer.store import load_progress, load_rollouts, save_progress, save_rollout
from services.kernel.events import Outgoing
from services.kernel.outbox import emit
from services.kernel.store import Store


class DurableRollouts:
    """Reads and writes the deployer's rollout rows; events go out through the outbox in the same transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def restore(self) -> list[tuple[Rollout, StepStats | None]]:
        """Every goal's saved state, with the numbers saved for its current step (None: none saved)."""
        with self.store.session() as s:
            return [(r, self._progress_of(s, r)) for r in load_rollouts(s)]

    def commit(self, rollout: Rollout, events: list[Outgoing]) -> None:
        """Save a decided state and emit its events, in one transaction."""
        def work(s: Session) -> None:
            save_rollout(s, rollout)
            for out in events:
                emit(s, out)
        self.store.run(work)

    def save_progress(self, items: list[Progress]) -> None:
        """Save the numbers of the steps in progress, so that a restart carries on from them."""
        def work(s: Session) -> None:
            for p in items:
                save_progress(s, p.goal, p.deployment_id, p.step_index, p.stats)
        if items:
            self.store.run(work)

    @staticmethod
    def _progress_of(s: Session, r: Rollout) -> StepStats | None:
        if not r.in_progress or r.candidate is None:
            return None
        return load_progress(s, r.goal, r.candidate.deployment_id, r.step_index)
