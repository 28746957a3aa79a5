"""The evaluator as a process on the real broker: kill -9 mid-evaluation, restart, one decision."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.events import Outgoing
from services.kernel.store import Store, jobs
from tests.support import EventLog, publish_signed, python, settings_env, start_process, stop_process, wait_for

pytestmark = pytest.mark.integration

CHILD = {"TUNELINE_EVALUATOR_TORCH_THREADS": "1", "TUNELINE_EVALUATOR_ROBUSTNESS_ROWS": "60",
         "TUNELINE_EVALUATOR_LATENCY_ROWS": "30"}
EVALUATOR = python("-c", "from services.cli import main; main()", "evaluator", "run")


def _job(store: Store):
    return store.run(lambda s: s.execute(sa.select(jobs).where(jobs.c.kind == "evaluate")).first())


def test_killed_mid_evaluation_then_restarted_gives_exactly_one_decision(settings, adapters, goal_for, flow, tmp_path):
    goal = goal_for()
    blobs = BlobStore.from_settings(settings)
    flow.blobs = blobs  # build the run.finished against the service's artifact store
    run = flow.run_finished(flow.put_adapter(adapters.good), adapters.eval, goal)
    applied = ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())
    publish_signed(settings, [Outgoing(applied, goal.name), Outgoing(run, goal.name)])
    passed, failed = EventLog(settings, "eval.passed"), EventLog(settings, "eval.failed")
    log = tmp_path / "evaluator.log"
    proc = start_process(EVALUATOR, settings, log, **CHILD)
    wait_for(lambda: (settings.state_dir / "stores" / "evaluator.db").exists(), 120, "the evaluator's store")
    store = Store(settings.store_url_for("evaluator"), "evaluator")
    # Kill it while it is scoring (progress 0.2 = the eval split is being scored).
    wait_for(lambda: (j := _job(store)) is not None and j.status == "running" and j.progress >= 0.2, 300,
             "the evaluation to be under way", interval_s=0.2)
    stop_process(proc, signal.SIGKILL)
    passed.poll(1.0)
    failed.poll(0.5)
    assert passed.items == [] and failed.items == []
    assert _job(store).status == "running"
    proc = start_process(EVALUATOR, settings, log, **CHILD)
    try:
        [decision] = passed.wait(1, timeout_s=420)
        wait_for(lambda: _job(store).status == "succeeded", 30, "the job to be marked succeeded")
        passed.poll(3.0)
        failed.poll(1.0)
        about_run = [i for i in passed.items + failed.items if i.message.outcome.run_id == run.run_id]
        assert len(about_run) == 1, [i.id for i in about_run]
        assert decision.message.outcome.passed and _job(store).attempts == 2
        shown = subprocess.run(python("-c", "from services.cli import main; main()", "evals",
                                      decision.message.outcome.eval_id[:18], "--path"),
                               env=settings_env(settings, COLUMNS="400"), capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert "PASSED" in shown.stdout and "HTML report" in shown.stdout and "latency_p95_ms" in shown.stdout
        copy = Path(shown.stdout.split("HTML report (verified copy): ")[1].split()[0])
        assert copy.parent == settings.state_dir / "reports" and copy.suffix == ".html"
        assert copy.read_bytes().lstrip().lower().startswith(b"<!doctype html"), "a page a browser opens"
    finally:
        assert stop_process(proc) is not None
        passed.close()
        failed.close()
