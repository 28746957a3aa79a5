"""A minimal service for the kernel's integration tests: it consumes goal.applied, records an
effect row per event and emits one alert.raised per event through the outbox.

Goal names starting with "raise-" make the handler raise every time (a poison message).
Run: python probe_service.py  (settings from TUNELINE_* env, like any service)
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.bus.consumer import Subscription
from services.kernel.events import Incoming, Outgoing
from services.kernel.runtime import ServiceRuntime
from services.kernel.settings import Settings
from services.kernel.store import Store

meta = sa.MetaData()
effects = sa.Table(
    "probe_effects", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("goal_name", sa.String(200), nullable=False),
    sa.Column("traceparent", sa.String(200), nullable=False),
)
MIGRATIONS = Path(__file__).with_name("probe_migrations")  # its alembic revisions


def handle_goal_applied(inc: Incoming[ev.GoalApplied], session: Session) -> list[Outgoing]:
    """Record the effect and announce it."""
    if inc.message.goal_name.startswith("raise-"):
        raise RuntimeError(f"probe handler refuses {inc.message.goal_name}")
    session.execute(effects.insert().values(event_id=inc.id, goal_name=inc.message.goal_name, traceparent=inc.traceparent))
    return [Outgoing(ev.AlertRaised(alert_id=inc.id, summary=f"seen {inc.message.goal_name}", kind="probe"), inc.subject)]


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    settings = Settings(consumer_max_attempts=3, consumer_backoff_s=0.05)
    store = Store.open(settings, "probe", MIGRATIONS)
    ServiceRuntime("probe", settings, store, [Subscription("goal.applied", handle_goal_applied, "probe")]).run()


if __name__ == "__main__":
    main()
