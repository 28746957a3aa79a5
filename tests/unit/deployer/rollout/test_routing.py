"""RoutingTable: stable hash split, mirror mode, atomic swaps, NotFound."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from services.deployer.domain.routing import GoalRoute, Mode, Role, RoutingTable, Slot, bucket
from services.kernel.errors import InvalidInput, NotFound


def slot(digest: str, role: Role = "champion", percent: int = 100) -> Slot:
    return Slot(digest=digest, role=role, percent=percent, deployment_id=f"d-{digest}",
                dataset_version="sha256:ds", goal_version="sha256:g", eval_id="e",
                adapter_dir=Path("/tmp") / digest)


def route(champion: Slot | None, candidate: Slot | None = None, mode: Mode = "none") -> GoalRoute:
    return GoalRoute(goal="g", champion=champion, candidate=candidate, mode=mode,
                     escalate_below_confidence=0.5, blocked_labels=frozenset(), log_text=False)


def test_bucket_is_stable_and_spread() -> None:
    ids = [f"req-{i}" for i in range(10_000)]
    assert [bucket(i) for i in ids] == [bucket(i) for i in ids]
    counts = [0] * 100
    for i in ids:
        counts[bucket(i)] += 1
    assert min(counts) > 50 and max(counts) < 150


def test_canary_split_follows_percent() -> None:
    table = RoutingTable()
    table.set(route(slot("a"), slot("b", "canary", 10), "canary"))
    served = [table.choose("g", f"r{i}")[0].digest for i in range(5000)]
    share = served.count("b") / len(served)
    assert 0.08 < share < 0.12
    assert all(table.choose("g", f"r{i}")[1] is None for i in range(100))


def test_same_request_id_always_same_slot() -> None:
    table = RoutingTable()
    table.set(route(slot("a"), slot("b", "canary", 50), "canary"))
    first = {f"r{i}": table.choose("g", f"r{i}")[0].digest for i in range(200)}
    assert all(table.choose("g", k)[0].digest == v for k, v in first.items())


def test_canary_at_zero_and_hundred() -> None:
    table = RoutingTable()
    table.set(route(slot("a"), slot("b", "canary", 0), "canary"))
    assert {table.choose("g", f"r{i}")[0].digest for i in range(500)} == {"a"}
    table.set(route(slot("a"), slot("b", "canary", 100), "canary"))
    assert {table.choose("g", f"r{i}")[0].digest for i in range(500)} == {"b"}


def test_mirror_serves_champion_and_shadows_candidate() -> None:
    table = RoutingTable()
    table.set(route(slot("a"), slot("b", "mirror", 0), "mirror"))
    for i in range(200):
        served, mirror = table.choose("g", f"r{i}")
        assert served.digest == "a" and mirror is not None and mirror.digest == "b"


def test_candidate_ignored_in_mode_none() -> None:
    table = RoutingTable()
    table.set(route(slot("a"), slot("b", "canary", 100), "none"))
    assert table.choose("g", "x") == (slot("a"), None)


def test_not_found_for_unknown_goal_or_no_champion() -> None:
    table = RoutingTable()
    with pytest.raises(NotFound):
        table.choose("nope", "r")
    table.set(route(None))
    with pytest.raises(NotFound):
        table.choose("g", "r")
    table.set(route(None, slot("b", "canary", 0), "canary"))
    with pytest.raises(NotFound):
        table.choose("g", "r")


def test_get_goals_remove() -> None:
    table = RoutingTable()
    r = route(slot("a"))
    table.set(r)
    table.set(replace(r, goal="h"))
    assert table.get("g") == r and table.goals() == ["g", "h"]
    table.remove("g")
    assert table.get("g") is None and table.goals() == ["h"]


def test_invalid_slot_and_mode_refused() -> None:
    # The casts smuggle invalid values past the type checker: the run-time checks are what is tested.
    with pytest.raises(InvalidInput):
        slot("a", percent=101)
    with pytest.raises(InvalidInput):
        slot("a", role=cast(Role, "boss"))
    with pytest.raises(InvalidInput):
        route(slot("a"), mode=cast(Mode, "shadow"))


def test_swaps_are_atomic_under_concurrent_readers() -> None:
    """A reader sees the route before or after a swap: the pair (served, mirror) is never mixed."""
    table = RoutingTable()
    old = route(slot("a"), slot("b", "mirror", 0), "mirror")
    new = route(slot("b"), None, "none")
    table.set(old)
    seen: set[tuple[str, str | None]] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            served, mirror = table.choose("g", "r")
            seen.add((served.digest, mirror.digest if mirror else None))

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(2000):
        table.set(new)
        table.set(old)
    stop.set()
    reader.join()
    assert seen <= {("a", "b"), ("b", None)}
