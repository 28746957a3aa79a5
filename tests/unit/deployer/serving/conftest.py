"""Fakes for the serving unit tests: a pool that answers from a hash of the text, an observer, a log."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest

from services.deployer.domain.routing import GoalRoute, Mode, Role, RoutingTable, Slot
from services.deployer.serving.inference_log import LogEntry
from services.deployer.serving.outcome import ServedOutcome
from services.deployer.serving.predictions import AdapterNotLoaded, AdapterPredictions

LABELS = ("card_lost", "refund", "transfer")


def digest(n: int) -> str:
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


class FakePool:
    """Answers label i when the text starts with 'label:i'; probabilities set by 'conf:x.y' (else 0.9)."""

    def __init__(self, digests=()) -> None:
        self._loaded: set[str] = set(digests)
        self.leases: dict[str, int] = {}
        self.batches: list[tuple[str, list[str]]] = []
        self.gate: threading.Event | None = None  # when set, predict waits for it
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def loaded(self) -> set[str]:
        return set(self._loaded)

    def load(self, d: str) -> None:
        self._loaded.add(d)

    def unload(self, d: str) -> None:
        self._loaded.discard(d)

    def acquire(self, d: str) -> None:
        with self._lock:
            if d not in self._loaded:
                raise AdapterNotLoaded(f"{d} not loaded")
            self.leases[d] = self.leases.get(d, 0) + 1

    def release(self, d: str) -> None:
        with self._lock:
            self.leases[d] -= 1

    def predict(self, d: str, texts: list[str]) -> AdapterPredictions:
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append((d, list(texts)))
        if self.fail_with is not None:
            raise self.fail_with
        probs = np.array([_probs(t) for t in texts], dtype=np.float32)
        emb = np.ones((len(texts), 16), np.float32)
        return AdapterPredictions(LABELS, probs, emb, np.array([len(t.split()) + 2 for t in texts]))


def _probs(text: str) -> list[float]:
    words = dict(w.split(":", 1) for w in text.split() if ":" in w)
    label, conf = int(words.get("label", 0)), float(words.get("conf", 0.9))
    rest = (1 - conf) / (len(LABELS) - 1)
    return [conf if i == label else rest for i in range(len(LABELS))]


class RecordingObserver:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Slot, ServedOutcome]] = []
        self.event = threading.Event()

    def on_served(self, goal: str, slot: Slot, outcome: ServedOutcome) -> None:
        self.seen.append((goal, slot, outcome))
        self.event.set()


class ListLog:
    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.closed = False

    def record(self, entry: LogEntry) -> None:
        self.entries.append(entry)

    def unlogged(self) -> int:
        return 0

    def healthy(self) -> bool:
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self.closed = True


def slot(n: int, role: Role = "champion", percent: int = 100) -> Slot:
    return Slot(digest(n), role, percent, f"dep-{n}", f"sha256:{'d' * 64}", f"sha256:{'g' * 64}", "eval-1",
                Path(f"/adapters/{n}"))


def route(champion: Slot | None, candidate: Slot | None = None, mode: Mode = "none", *, threshold: float = 0.55,
          blocked=(), log_text: bool = False, goal: str = "banking") -> GoalRoute:
    return GoalRoute(goal, champion, candidate, mode, threshold, frozenset(blocked), log_text)


@pytest.fixture
def routing() -> RoutingTable:
    return RoutingTable()


@pytest.fixture
def kit():
    """The fakes and builders above, for tests (pytest's importlib mode forbids importing conftest)."""
    import types

    return types.SimpleNamespace(FakePool=FakePool, RecordingObserver=RecordingObserver, ListLog=ListLog,
                                 digest=digest, slot=slot, route=route, LABELS=LABELS)
