"""Ground truth joined to predictions through the ledger, live accuracy windows, and the rollback they ask for
(services.monitor.feedback), on the monitor's real store: the handlers and the matcher as the monitor runs them."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import sqlalchemy as sa
import yaml
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.goal import parse_goal
from services.kernel.ids import uuid7
from services.kernel.settings import REPO_ROOT
from services.kernel.store import Store, outbox
from services.monitor import audit, feedback, handlers
from services.monitor.bootstrap import feedback_alert
from services.monitor.store import AccuracyWindowRow, FeedbackRow

ADAPTER, OLD = "sha256:" + "a" * 64, "sha256:" + "b" * 64
GOAL = "banking77"
WINDOW = 200


def _setup(store: Store, make_incoming, *, accuracy_drop: bool = True) -> int:
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    if accuracy_drop:
        data["rollback"] = {**data.get("rollback", {}), "accuracy_drop": {"max_drop": 0.05, "min_samples": WINDOW}}
    goal = parse_goal(data)
    outcome = ev.EvalOutcome(eval_id="eval-1", run_id="run-1", goal_name=GOAL, passed=True, adapter=ev.ArtifactRef(digest=ADAPTER),
                             metrics={"accuracy": 0.9})
    promoted = make_incoming(ev.DeploymentPromoted(deployment_id="dep-1", goal_name=GOAL, adapter=ev.ArtifactRef(digest=ADAPTER),
                                                   previous_champion_digest=OLD))
    with store.session() as s:
        handlers.on_goal_applied(make_incoming(ev.GoalApplied(goal_name=GOAL, goal_version=goal.version,
                                                              goal_json=goal.canonical_json())), s)
        handlers.on_eval_passed(make_incoming(ev.EvalPassed(outcome=outcome)), s)
        handlers.on_deployment_promoted(promoted, s)
    return int(promoted.time.timestamp() * 1000)


def _traffic(store: Store, make_incoming, rng: np.random.Generator, n: int, accuracy: float,
             feedback_first_at_ms: int | None = None) -> None:
    """n predictions in the ledger and their ground truth, `accuracy` of them right."""
    predictions, truths = [], []
    for _ in range(n):
        request = uuid7()
        predictions.append(make_incoming(ev.InferenceLogged(request_id=request, goal_name=GOAL, adapter_digest=ADAPTER,
                                                            deployment_id="dep-1", variant="champion", label="card_arrival",
                                                            confidence=0.9)))
        truth = "card_arrival" if rng.random() < accuracy else "lost_or_stolen_card"
        truths.append(make_incoming(ev.FeedbackRecorded(feedback_id=uuid7(), request_id=request, goal_name=GOAL, label=truth,
                                                        source="delayed_label")))
    with store.session() as s:
        for t in truths:
            feedback.on_feedback_recorded(t, s)
        if feedback_first_at_ms is None:
            for p in predictions:
                audit.append_event(p, s)
    if feedback_first_at_ms is not None:  # the truth came back before its prediction reached the ledger
        assert feedback.match(store, feedback_alert, now_ms=feedback_first_at_ms) == 0
        with store.session() as s:
            for p in predictions:
                audit.append_event(p, s)


def _values(store: Store, event: str) -> list[bytes]:
    with store.session() as s:
        return list(s.execute(sa.select(outbox.c.value).where(outbox.c.event_type == event).order_by(outbox.c.seq)).scalars())


def _requests(store: Store) -> list[ev.RollbackRequested]:
    return [ev.RollbackRequested.FromString(v) for v in _values(store, "rollback.requested")]


def _alerts(store: Store) -> list[ev.AlertRaised]:
    return [ev.AlertRaised.FromString(v) for v in _values(store, "alert.raised")]


def _windows(store: Store) -> list[AccuracyWindowRow]:
    with store.session() as s:
        return list(s.execute(sa.select(AccuracyWindowRow).order_by(AccuracyWindowRow.index)).scalars())


def test_feedback_at_the_evaluated_accuracy_asks_for_nothing_over_60_windows(store, make_incoming) -> None:
    promoted_ms = _setup(store, make_incoming)
    rng = np.random.default_rng(11)
    for _ in range(6):
        _traffic(store, make_incoming, rng, 10 * WINDOW, accuracy=0.9)
        while feedback.match(store, feedback_alert, now_ms=promoted_ms + 60_000):
            pass
    windows = _windows(store)
    assert len(windows) == 60 and not any(w.breached for w in windows)
    assert 0.85 < float(np.mean([w.accuracy for w in windows])) < 0.95
    assert _requests(store) == [] and _alerts(store) == []


def test_a_15_point_drop_after_promotion_asks_for_one_rollback_and_alerts_once(store, make_incoming) -> None:
    promoted_ms = _setup(store, make_incoming)
    rng = np.random.default_rng(5)
    _traffic(store, make_incoming, rng, 2 * WINDOW, accuracy=0.9)
    assert feedback.match(store, feedback_alert, now_ms=promoted_ms + 30_000) == 2 * WINDOW
    _traffic(store, make_incoming, rng, 3 * WINDOW, accuracy=0.75, feedback_first_at_ms=promoted_ms + 40_000)
    while feedback.match(store, feedback_alert, now_ms=promoted_ms + 60_000):
        pass
    windows = _windows(store)
    assert [w.breached for w in windows[:2]] == [False, False] and windows[2].breached, [w.accuracy for w in windows]
    [request] = _requests(store)
    assert request.adapter_digest == ADAPTER and request.requested_by == "monitor"
    assert "live accuracy" in request.reason and "recently promoted champion" in request.reason
    assert request.numbers["evaluated_accuracy"] == 0.9 and request.numbers["live_accuracy"] < 0.82
    [alert] = _alerts(store)
    assert alert.kind == "accuracy" and alert.severity == "critical" and "rollback requested" in alert.details


def test_a_drop_on_a_champion_promoted_long_ago_alerts_a_person_and_asks_no_rollback(store, make_incoming) -> None:
    promoted_ms = _setup(store, make_incoming)
    _traffic(store, make_incoming, np.random.default_rng(5), 2 * WINDOW, accuracy=0.7)
    feedback.match(store, feedback_alert, now_ms=promoted_ms + int(timedelta(days=2).total_seconds() * 1000))
    assert _requests(store) == []
    [alert] = _alerts(store)
    assert alert.kind == "accuracy" and "a person decides" in alert.details


def test_the_same_feedback_twice_counts_once_and_feedback_for_another_goal_is_kept_unjoined(store, make_incoming) -> None:
    promoted_ms = _setup(store, make_incoming, accuracy_drop=False)
    logged = make_incoming(ev.InferenceLogged(request_id="req-1", goal_name=GOAL, adapter_digest=ADAPTER, label="a", confidence=0.5))
    same = ev.FeedbackRecorded(feedback_id="fb-1", request_id="req-1", goal_name=GOAL, label="a")
    wrong_goal = ev.FeedbackRecorded(feedback_id="fb-2", request_id="req-1", goal_name="clinc150", label="a")
    with store.session() as s:
        audit.append_event(logged, s)
        for m in (same, same, wrong_goal):
            feedback.on_feedback_recorded(make_incoming(m), s)
    assert feedback.match(store, feedback_alert, now_ms=promoted_ms) == 1
    with store.session() as s:
        rows = {r.feedback_id: r for r in s.execute(sa.select(FeedbackRow)).scalars()}
    assert set(rows) == {"fb-1", "fb-2"} and rows["fb-1"].correct is True and rows["fb-1"].adapter_digest == ADAPTER
    assert rows["fb-2"].correct is None and "not 'clinc150'" in rows["fb-2"].problem
