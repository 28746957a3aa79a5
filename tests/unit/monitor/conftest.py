"""Monitor test helpers: events as the kernel would deliver them, and a store on a tmp SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from google.protobuf.message import Message

from services.kernel.events import Incoming, event_name_of
from services.kernel.ids import uuid7
from services.kernel.settings import Settings
from services.kernel.store import Store
from services.monitor.store import MIGRATIONS

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
M = TypeVar("M", bound=Message)


def incoming(message: M, subject: str = "banking77", offset: int = 0, at_s: float = 0.0) -> Incoming[M]:
    """A decoded event with fresh ce_id, as a consumer sees it."""
    name = event_name_of(message)
    return Incoming(id=uuid7(), type=name, source="test/1", time=T0 + timedelta(seconds=at_s), subject=subject,
                    message=message, traceparent="00-" + "ab" * 16 + "-" + "cd" * 8 + "-01", topic=f"tuneline.{name}",
                    partition=0, offset=offset)


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    settings = Settings(state_dir=tmp_path, namespace="unit.")
    s = Store.open(settings, "monitor", MIGRATIONS)
    yield s
    s.dispose()


@pytest.fixture
def make_incoming():
    """The `incoming` factory (importlib mode: test modules cannot import the conftest)."""
    return incoming
