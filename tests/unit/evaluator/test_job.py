"""The evaluation job on a real SQLite store and blob folder, with a fake model: no Kafka, no torch."""

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.evaluator import bootstrap, handlers, job
from services.evaluator.adapters.parquet import write_eval_data
from services.evaluator.evaluation import EvalData
from services.evaluator.settings import EvaluatorSettings
from services.kernel import features
from services.kernel.blobs import BlobStore
from services.kernel.events import Incoming
from services.kernel.ids import uuid7
from services.kernel.jobs import JobRunner
from services.kernel.store import outbox
from tests.support import signed_adapter

LABELS = ["a_label", "b_label"]
M = TypeVar("M", bound=Message)


def rule(text: str) -> str:
    # Keyed on the row number, which no perturbation touches: robustness is perfect by construction.
    number = re.search(r"\d+", text)
    assert number is not None
    return "a_label" if int(number.group()) % 2 else "b_label"


@pytest.fixture
def env(tmp_path, fake_scorer):
    settings = EvaluatorSettings(state_dir=tmp_path, evaluator_robustness_rows=30, evaluator_latency_rows=5)
    store = bootstrap.open_store(settings)
    blobs = BlobStore.from_settings(settings)
    loaded: list[Path] = []

    def load(base_model: str, folder: Path, digest: str):
        loaded.append(folder)
        return fake_scorer(LABELS, rule, conf=0.97)

    deps = job.EvalDeps(store, blobs, settings, load)
    return settings, store, blobs, deps, loaded


def _incoming(message: M, event: str) -> Incoming[M]:
    return Incoming(id=uuid7(), type=event, source="test", time=datetime.now(UTC), subject="banking77", message=message)


Signed = tuple[ev.ArtifactRef, ev.ArtifactRef]  # an adapter's tree and the trainer's artifact signature


def _adapter(tmp_path: Path, blobs: BlobStore, tag: str) -> Signed:
    """A stored adapter (a LoRA adapter's four files; the scorer is fake) and its signature, as the trainer makes them."""
    folder = tmp_path / f"adapter-{tag}"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"tag": tag}))
    (folder / "adapter_model.safetensors").write_bytes(b"lora-" + tag.encode())
    (folder / "labels.json").write_text(json.dumps({"labels": LABELS, "tag": tag}))
    (folder / "head.safetensors").write_bytes(b"weights-" + tag.encode())
    return signed_adapter(EvaluatorSettings(state_dir=tmp_path), blobs, folder)  # the env's keys folder


def _run(blobs: BlobStore, adapter: Signed, goal_version: str, run_id: str = "") -> ev.RunFinished:
    texts = tuple(f"{'alpha' if i % 2 else 'beta'} question number {i}" for i in range(40))
    data = EvalData(texts, tuple(rule(t) for t in texts), None)
    eval_ref = blobs.put_bytes(write_eval_data(data), "application/vnd.apache.parquet")
    return ev.RunFinished(run_id=run_id or uuid7(), goal_name="banking77", goal_version=goal_version, status="succeeded",
                          adapter=adapter[0], adapter_signature=adapter[1], eval_data=eval_ref,
                          base_model="bundled:all-MiniLM-L6-v2", method="lora",
                          labels=LABELS, text_field="text", label_field="label", dataset_name="banking77",
                          dataset_version="sha256:" + "d" * 64)


def _apply(store, goal) -> None:
    msg = ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())
    store.run(lambda s: handlers.on_goal_applied(_incoming(msg, "goal.applied"), s))


def _finish(store, run) -> None:
    store.run(lambda s: handlers.on_run_finished(_incoming(run, "run.finished"), s))


def _decisions(store) -> list[ev.EvalOutcome]:
    rows = store.run(lambda s: s.execute(sa.select(outbox.c.event_type, outbox.c.value)).all())
    types: dict[str, type[ev.EvalPassed] | type[ev.EvalFailed]] = {"eval.passed": ev.EvalPassed, "eval.failed": ev.EvalFailed}
    return [types[t].FromString(v).outcome for t, v in rows if t in types]


def _runner(deps) -> JobRunner:
    return bootstrap.job_runner(deps)


def test_a_good_adapter_passes_with_reports_and_a_reference_profile(env, tmp_path, base_goal):
    settings, store, blobs, deps, loaded = env
    _apply(store, base_goal)
    _finish(store, _run(blobs, _adapter(tmp_path, blobs, "good"), base_goal.version))
    assert _runner(deps).run_once()
    [out] = _decisions(store)
    assert out.passed, out.summary
    assert {c.name for c in out.criteria} == set(base_goal.acceptance.declared())
    assert out.metrics["accuracy"] == 1.0
    report = json.loads(blobs.get_bytes(out.report_json))
    assert report["decision"]["passed"] is True
    assert b"Reliability diagram" in blobs.get_bytes(out.report_html)
    profile = pq.read_table(io.BytesIO(blobs.get_bytes(out.reference.table)))
    assert profile.column_names == list(features.FEATURE_NAMES)
    assert profile.num_rows == out.reference.rows == 40
    assert out.reference.projection_seed == features.PROJECTION_SEED


def test_a_tampered_adapter_is_refused_and_never_loaded(env, tmp_path, base_goal):
    settings, store, blobs, deps, loaded = env
    _apply(store, base_goal)
    ref = _adapter(tmp_path, blobs, "tampered")
    stored = Path(ref[0].uri) / "head.safetensors"
    stored.write_bytes(b"weights-evil")  # same length: only the digest can tell
    _finish(store, _run(blobs, ref, base_goal.version))
    assert _runner(deps).run_once()
    [out] = _decisions(store)
    assert not out.passed and out.summary.startswith("refused: IntegrityError")
    assert all(not c.passed and "IntegrityError" in c.reason for c in out.criteria)
    assert loaded == []  # refused before any model code saw the files


@pytest.mark.parametrize("signature", ["none", "another adapter's", "another key's"])
def test_a_candidate_the_trainer_did_not_sign_fails_closed_and_is_never_loaded(env, tmp_path, base_goal, signature):
    settings, store, blobs, deps, loaded = env
    _apply(store, base_goal)
    tree, bundle = _adapter(tmp_path, blobs, "candidate")
    if signature == "none":
        bundle = ev.ArtifactRef()
    elif signature == "another adapter's":
        bundle = _adapter(tmp_path, blobs, "other")[1]
    else:
        stranger = EvaluatorSettings(state_dir=tmp_path / "stranger")
        bundle = signed_adapter(stranger, blobs, tmp_path / "adapter-candidate")[1]
    _finish(store, _run(blobs, (tree, bundle), base_goal.version))
    assert _runner(deps).run_once()
    [out] = _decisions(store)
    assert not out.passed and out.summary.startswith("refused: Unauthenticated")
    assert all(not c.passed and "artifact signature" in c.reason for c in out.criteria)
    assert out.adapter_signature == bundle   # the outcome names the signature it was judged on
    assert loaded == []  # refused before any model code saw the files


def test_a_signed_candidate_carries_its_signature_into_the_outcome(env, tmp_path, base_goal):
    settings, store, blobs, deps, loaded = env
    _apply(store, base_goal)
    run = _run(blobs, _adapter(tmp_path, blobs, "signed"), base_goal.version)
    _finish(store, run)
    assert _runner(deps).run_once()
    [out] = _decisions(store)
    assert out.passed and out.adapter_signature == run.adapter_signature and out.adapter_signature.digest


def test_a_run_waits_for_its_goal_and_is_evaluated_once(env, tmp_path, base_goal):
    settings, store, blobs, deps, loaded = env
    run = _run(blobs, _adapter(tmp_path, blobs, "w"), base_goal.version)
    _finish(store, run)
    assert not _runner(deps).run_once()  # nothing queued before the goal is known
    _apply(store, base_goal)
    _finish(store, run)  # the same run announced again under a new event id
    runner = _runner(deps)
    assert runner.run_once() and not runner.run_once()
    assert len(_decisions(store)) == 1


def test_a_job_interrupted_mid_evaluation_resumes_with_one_decision(env, tmp_path, base_goal):
    settings, store, blobs, deps, loaded = env
    _apply(store, base_goal)
    _finish(store, _run(blobs, _adapter(tmp_path, blobs, "k"), base_goal.version))
    dying = JobRunner(store, handlers.JOB_KIND, lambda j, c: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        dying.run_once()  # claimed (status running), then the "process" died before finishing
    assert _decisions(store) == []
    assert _runner(deps).run_once()
    assert [o.passed for o in _decisions(store)] == [True]


def test_a_job_that_fails_for_good_still_yields_eval_failed(env, tmp_path, base_goal):
    settings, store, blobs, deps, loaded = env
    _apply(store, base_goal)
    _finish(store, _run(blobs, _adapter(tmp_path, blobs, "f"), base_goal.version))

    def explode(*_a):
        raise OSError("disk on fire")

    broken = job.EvalDeps(store, blobs, settings, explode)
    runner = bootstrap.job_runner(broken)
    while runner.run_once():
        pass
    [out] = _decisions(store)
    assert not out.passed and "disk on fire" in out.summary


def test_champion_follows_promotions_and_rollbacks(env, tmp_path, base_goal):
    settings, store, blobs, deps, loaded = env
    good, _ = _adapter(tmp_path, blobs, "champ")
    promoted = ev.DeploymentPromoted(goal_name="banking77", adapter=good)
    store.run(lambda s: handlers.on_deployment_promoted(_incoming(promoted, "deployment.promoted"), s))
    _apply(store, base_goal)
    _finish(store, _run(blobs, _adapter(tmp_path, blobs, "cand"), base_goal.version))
    assert _runner(deps).run_once()
    [out] = _decisions(store)
    assert out.champion.champion_digest == good.digest and out.champion.test == "mcnemar_midp"
    assert len(loaded) == 2  # the candidate and the champion, each from its verified folder
    rolled = ev.DeploymentRolledBack(goal_name="banking77", adapter_digest=good.digest, restored_digest="")
    store.run(lambda s: handlers.on_deployment_rolled_back(_incoming(rolled, "deployment.rolled_back"), s))
    _finish(store, _run(blobs, _adapter(tmp_path, blobs, "cand2"), base_goal.version))
    assert _runner(deps).run_once()
    assert [c.reason for c in _decisions(store)[1].criteria if c.name == "vs_champion"] == ["no champion serving"]


def test_a_slice_field_the_eval_split_lacks_fails_closed(env, tmp_path, base_goal, goal_with):
    settings, store, blobs, deps, loaded = env
    goal = goal_with(base_goal, task={"slice_field": "channel"})
    _apply(store, goal)
    _finish(store, _run(blobs, _adapter(tmp_path, blobs, "s"), goal.version))
    assert _runner(deps).run_once()
    [out] = _decisions(store)
    failed = [c for c in out.criteria if not c.passed]
    assert not out.passed and [c.name for c in failed] == ["slice_gap"]
    assert not failed[0].computed and "slice column 'channel' missing" in failed[0].reason


def test_a_stale_champion_event_does_not_overwrite_a_newer_one(env, tmp_path):
    from datetime import timedelta

    from services.evaluator.store import ChampionRow

    settings, store, blobs, deps, loaded = env
    (new, _), (old, _) = _adapter(tmp_path, blobs, "new"), _adapter(tmp_path, blobs, "old")
    now = datetime.now(UTC)
    for ref, when in ((new, now), (old, now - timedelta(minutes=5))):
        inc = Incoming(id=uuid7(), type="deployment.promoted", source="t", time=when, subject="banking77",
                       message=ev.DeploymentPromoted(goal_name="banking77", adapter=ref))
        store.run(lambda s, inc=inc: handlers.on_deployment_promoted(inc, s))
    assert store.run(lambda s: s.get(ChampionRow, "banking77").digest) == new.digest


def _private_goal(base_goal, goal_with, bound: float):
    goal = goal_with(base_goal, training={"privacy": {"epsilon": 8}}, acceptance={"privacy_epsilon": {"max": bound}})
    return goal


def test_the_privacy_epsilon_criterion_reads_the_run_and_the_report_states_it(env, tmp_path, base_goal, goal_with):
    settings, store, blobs, deps, loaded = env
    goal = _private_goal(base_goal, goal_with, 8.0)
    _apply(store, goal)
    run = _run(blobs, _adapter(tmp_path, blobs, "dp"), goal.version)
    run.metrics.update({"privacy_epsilon": 7.9, "privacy_delta": 1e-5, "privacy_noise_multiplier": 0.6,
                        "privacy_sample_rate": 0.004, "privacy_steps": 844.0, "privacy_max_grad_norm": 1.0,
                        "privacy_accountant_rdp": 1.0})
    _finish(store, run)
    assert _runner(deps).run_once()
    [out] = _decisions(store)
    crit = {c.name: c for c in out.criteria}["privacy_epsilon"]
    assert out.passed and crit.passed and crit.value == 7.9 and crit.threshold == 8.0 and "rdp accountant" in crit.reason
    assert out.metrics["privacy_epsilon"] == 7.9 and out.metrics["privacy_delta"] == 1e-5
    report = json.loads(blobs.get_bytes(out.report_json))
    assert report["findings"]["privacy"]["epsilon"] == 7.9 and report["findings"]["privacy"]["accountant"] == "rdp"
    html = blobs.get_bytes(out.report_html).decode()
    assert "(ε = 7.9, δ = 1e-05)-DP per train row" in html and "844 steps, RDP accountant" in html


def test_a_goal_requiring_privacy_epsilon_fails_a_run_trained_without_dp(env, tmp_path, base_goal, goal_with):
    settings, store, blobs, deps, loaded = env
    goal = _private_goal(base_goal, goal_with, 100.0)
    _apply(store, goal)
    _finish(store, _run(blobs, _adapter(tmp_path, blobs, "plain"), goal.version))
    assert _runner(deps).run_once()
    [out] = _decisions(store)
    crit = {c.name: c for c in out.criteria}["privacy_epsilon"]
    assert not out.passed and not crit.computed and "not trained with differential privacy" in crit.reason
    assert [c.name for c in out.criteria if not c.passed] == ["privacy_epsilon"]
    assert b"Not trained with differential privacy" in blobs.get_bytes(out.report_html)


def test_each_decision_and_criterion_is_counted_in_the_gate_metrics(env, tmp_path, base_goal):
    from tests.support import local_metrics, metric_total

    settings, store, blobs, deps, _ = env
    local_metrics()
    _apply(store, base_goal)
    before = local_metrics()
    _finish(store, _run(blobs, _adapter(tmp_path, blobs, "good"), base_goal.version))
    assert _runner(deps).run_once()
    tampered = _adapter(tmp_path, blobs, "tampered")
    (Path(tampered[0].uri) / "head.safetensors").write_bytes(b"weights-evil")
    _finish(store, _run(blobs, tampered, base_goal.version))  # refused: every criterion fails
    assert _runner(deps).run_once()
    after = local_metrics()

    def delta(name, **labels):
        return metric_total(after, name, **labels) - metric_total(before, name, **labels)

    assert delta("tuneline_gate_decisions_total", goal="banking77", decision="passed") == 1
    assert delta("tuneline_gate_decisions_total", goal="banking77", decision="failed") == 1
    criteria = set(base_goal.acceptance.declared())
    for name in criteria:
        assert delta("tuneline_gate_criteria_total", goal="banking77", criterion=name, outcome="passed") == 1, name
    assert delta("tuneline_gate_criteria_total", goal="banking77", outcome="failed") == len(criteria), \
        "the refused run fails every criterion, each counted"
