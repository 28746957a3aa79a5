"""Windows held until an adapter's reference is known, then judged one by one, in order."""

from __future__ import annotations

import io
from typing import cast

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.events import Outgoing
from services.kernel.features import EMBEDDING_FEATURES, FEATURE_NAMES
from services.kernel.goal import load_goal
from services.kernel.store import Store
from services.monitor import handlers
from services.monitor.domain.alerts import Alert
from services.monitor.store import DeploymentRow, DriftStateRow, WindowRow, WindowVerdictRow
from services.monitor.windows import HOLD_WINDOWS, Blobs, WindowDeps, add_to_window
from tests.support import REPO, local_metrics, metric_total

ADAPTER = "sha256:" + "a" * 64
WINDOW = 20


def _prediction(rng: np.random.Generator, shifted: bool, at_ms: int) -> ev.InferenceLogged:
    # In-domain: confident, short; shifted: unsure, long, another region of the embedding.
    conf = rng.uniform(0.05, 0.3) if shifted else rng.uniform(0.8, 1.0)
    emb = rng.normal(3.0 if shifted else 0.0, 1.0, len(EMBEDDING_FEATURES))
    return ev.InferenceLogged(goal_name="banking77", adapter_digest=ADAPTER, deployment_id="d1", variant="canary",
                              confidence=conf, margin=conf / 2, text_length=int(rng.integers(80, 120) if shifted else rng.integers(20, 40)),
                              token_count=int(rng.integers(20, 30) if shifted else rng.integers(5, 10)),
                              embedding_projection=list(emb), label=str(rng.integers(0, 3)), latency_ms=5.0,
                              served_at_unix_ms=at_ms)


def _reference(blobs: Blobs) -> ev.ArtifactRef:
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(400):
        m = _prediction(rng, False, 0)
        rows.append([m.confidence, m.margin, m.text_length, m.token_count, *m.embedding_projection, m.label])
    buf = io.BytesIO()
    pd.DataFrame(rows, columns=list(FEATURE_NAMES)).to_parquet(buf, index=False)
    return blobs.put_bytes(buf.getvalue(), "application/vnd.apache.parquet")


@pytest.fixture
def goal_applied() -> ev.GoalApplied:
    goal = load_goal(REPO / "goals" / "banking77-quick.yaml")
    goal = goal.replace(rollback=goal.rollback.replace(window_size=WINDOW))
    return ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())


def _send(store: Store, deps: WindowDeps, make_incoming, messages: list[ev.InferenceLogged]) -> list[Outgoing | Alert]:
    out: list[Outgoing | Alert] = []
    for m in messages:
        with store.session() as session:
            out += add_to_window(make_incoming(m), session, deps)
    return out


def _verdicts(store: Store) -> list[tuple[int, bool]]:
    with store.session() as session:
        rows = session.execute(sa.select(WindowVerdictRow).order_by(WindowVerdictRow.index)).scalars()
        return [(r.index, r.drifted) for r in rows]


def test_windows_read_before_the_reference_are_judged_in_order_once_it_arrives(store: Store, make_incoming, goal_applied: ev.GoalApplied,
                                                                                tmp_path) -> None:
    deps, rng = WindowDeps(BlobStore(str(tmp_path / "artifacts"))), np.random.default_rng(7)
    with store.session() as session:
        handlers.on_goal_applied(make_incoming(goal_applied), session)
    # Three shifted windows arrive before eval.passed (another topic) has been read: nothing is decided.
    early = [_prediction(rng, True, 1000 + i) for i in range(3 * WINDOW)]
    assert _send(store, deps, make_incoming, early) == []
    assert _verdicts(store) == []
    with store.session() as session:
        assert session.get_one(DriftStateRow, ("banking77", ADAPTER)).pending == 3 * WINDOW

    outcome = ev.EvalOutcome(goal_name="banking77", eval_id="e1", adapter=ev.ArtifactRef(digest=ADAPTER),
                             reference=ev.ReferenceProfile(table=_reference(deps.blobs)))
    with store.session() as session:
        handlers.on_eval_passed(make_incoming(ev.EvalPassed(outcome=outcome)), session)
    before = local_metrics()
    out = _send(store, deps, make_incoming, [_prediction(rng, True, 5000)])
    after = local_metrics()

    assert _verdicts(store) == [(0, True), (1, True), (2, True)], "each held window is judged on its own"
    judged = "tuneline_drift_windows_total"
    assert metric_total(after, judged, goal="banking77", drifted="true") - metric_total(before, judged, goal="banking77",
                                                                                     drifted="true") == 3
    assert metric_total(after, "tuneline_drift_share", goal="banking77", adapter="a" * 12) > 0.5
    events = [o.event for o in out if hasattr(o, "event")]
    assert events.count("rollback.requested") == 1, "two drifted windows in a row roll the canary back, once"
    with store.session() as session:
        assert session.get_one(DriftStateRow, ("banking77", ADAPTER)).pending == 1
        assert session.execute(sa.select(sa.func.count()).select_from(WindowRow)).scalar() == 1


def test_without_a_reference_windows_pass_unjudged_beyond_the_hold(store: Store, make_incoming, goal_applied: ev.GoalApplied,
                                                                   tmp_path) -> None:
    deps, rng = WindowDeps(BlobStore(str(tmp_path / "artifacts"))), np.random.default_rng(7)
    with store.session() as session:
        handlers.on_goal_applied(make_incoming(goal_applied), session)
    _send(store, deps, make_incoming, [_prediction(rng, False, i) for i in range((HOLD_WINDOWS + 1) * WINDOW)])
    with store.session() as session:
        state = session.get_one(DriftStateRow, ("banking77", ADAPTER))
        assert state.windows == 2 and state.pending == (HOLD_WINDOWS - 1) * WINDOW, "the store holds at most the hold"
    assert _verdicts(store) == []


def _errors(rng: np.random.Generator, at_ms: int, failing: int) -> list[ev.InferenceLogged]:
    """A window of in-domain predictions of the champion, the first `failing` of them errors."""
    out = []
    for i in range(WINDOW):
        m = _prediction(rng, False, at_ms + i)
        m.variant, m.error = "champion", i < failing
        out.append(m)
    return out


@pytest.mark.parametrize(("promoted_ago_s", "asks"), [(60, True), (2 * 86_400, False)])
def test_an_error_rate_breach_after_promotion_asks_for_a_rollback_once(store: Store, make_incoming, goal_applied: ev.GoalApplied,
                                                                      tmp_path, promoted_ago_s: int, asks: bool) -> None:
    deps, rng = WindowDeps(BlobStore(str(tmp_path / "artifacts"))), np.random.default_rng(3)
    start_ms = 1_800_000_000_000
    promoted = make_incoming(ev.DeploymentPromoted(deployment_id="dep-9", goal_name="banking77", adapter=ev.ArtifactRef(digest=ADAPTER)))
    outcome = ev.EvalOutcome(goal_name="banking77", eval_id="e1", adapter=ev.ArtifactRef(digest=ADAPTER),
                             reference=ev.ReferenceProfile(table=_reference(deps.blobs)))
    with store.session() as session:
        handlers.on_goal_applied(make_incoming(goal_applied), session)
        handlers.on_eval_passed(make_incoming(ev.EvalPassed(outcome=outcome)), session)
        handlers.on_deployment_promoted(promoted, session)
        session.get_one(DeploymentRow, ("banking77", ADAPTER)).promoted_at_ms = start_ms - promoted_ago_s * 1000
    out = _send(store, deps, make_incoming, _errors(rng, start_ms, failing=5) + _errors(rng, start_ms + 100, failing=5))
    requests = [cast(ev.RollbackRequested, o.message) for o in out if isinstance(o, Outgoing) and o.event == "rollback.requested"]
    [alert] = [a for a in out if isinstance(a, Alert)]
    assert alert.kind == "error_rate", "one alert per breach episode"
    if asks:
        [request] = requests
        assert request.adapter_digest == ADAPTER and request.deployment_id == "dep-9" and request.numbers["error_rate"] == 0.25
        assert "error rate on the recently promoted champion" in request.reason and "rollback requested" in alert.details
    else:
        assert requests == [] and "a person decides: the champion was promoted long ago" in alert.details
