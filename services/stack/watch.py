"""Watching the event stream: one consumer on every Tuneline topic, decoded, kept in order."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from confluent_kafka import Consumer

from services.kernel.bus.security import client_config
from services.kernel.bus.topics import all_topics
from services.kernel.errors import PermanentError, TransientError
from services.kernel.events import Incoming, decode
from services.kernel.settings import Settings

# An event of whichever type the caller named: callers read its message's fields by that name.
Event = Incoming[Any]


class EventWatch:
    """Collects every event on every topic from the beginning, on a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events: list[tuple[float, Event]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = Consumer(client_config(settings, {"group.id": f"watch-{uuid.uuid4().hex}",
                                                           "auto.offset.reset": "earliest", "enable.auto.commit": False}))
        self._consumer.subscribe([t for t in all_topics(settings) if not t.endswith("inference.logged")])
        self._thread = threading.Thread(target=self._run, name="event-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            try:
                # A record without an error has its topic, partition and offset; a consumed record's headers are
                # (key, bytes) pairs (confluent_kafka types headers() as everything produce() accepts).
                inc = decode(msg.value(), cast("list[tuple[str, bytes]] | None", msg.headers()), topic=cast(str, msg.topic()),
                             partition=cast(int, msg.partition()), offset=cast(int, msg.offset()))
            except PermanentError:
                continue
            with self._lock:
                self.events.append((time.time(), inc))

    def find(self, event: str, where: Callable[[Event], bool] = lambda _: True) -> list[Event]:
        """The events of a type seen so far that match."""
        with self._lock:
            return [e for _, e in self.events if e.type == event and where(e)]

    def seen_at(self, inc: Event) -> float:
        """When this process received an event (wall clock)."""
        with self._lock:
            return next(t for t, e in self.events if e is inc)

    def wait(self, events: tuple[str, ...], where: Callable[[Event], bool], timeout_s: float,
             on_tick: Callable[[], None] = lambda: None) -> Event:
        """Block until one of `events` matching `where` arrives; call on_tick while waiting."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name in events:
                found = self.find(name, where)
                if found:
                    return found[0]
            on_tick()
            time.sleep(0.25)
        raise TransientError(f"no {' or '.join(events)} within {timeout_s:.0f}s",
                             hint=f"look at the service logs under {self.settings.state_dir / 'logs'}")

    def close(self) -> None:
        """Stop watching."""
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
