"""Ground truth on the real broker: `tuneline feedback --file` publishes labels for a promoted model's
predictions, the monitor process joins them to its ledger and, when live accuracy drops 15 points below
the evaluated one, asks for the rollback and alerts. (The 60 windows at the evaluated accuracy that ask
for nothing run on the same code in tests/unit/monitor/test_feedback.py.)"""

from __future__ import annotations

import csv
import sqlite3
import subprocess
from contextlib import closing

import numpy as np
import pytest
import yaml
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import Outgoing
from services.kernel.goal import parse_goal
from services.kernel.ids import uuid7
from services.kernel.settings import REPO_ROOT
from tests.support import EventLog, free_ports, publish_signed, python, settings_env, start_process, stop_process, wait_for

pytestmark = pytest.mark.integration
ADAPTER = "sha256:" + "e" * 64
WINDOW = 200
RUN_MONITOR = "import sys; sys.argv = ['tuneline', 'monitor', 'run']; from services.cli import main; main()"
CLI = "import sys; sys.argv = ['tuneline', *sys.argv[1:]]; from services.cli import main; main()"


def _monitor_knows_the_champion(settings) -> bool:
    db = settings.state_dir / "stores" / "monitor.db"
    if not db.exists():
        return False
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        try:
            roles = con.execute("select role from monitor_deployments").fetchall()
            evaluated = con.execute("select accuracy from monitor_evaluated").fetchall()
        except sqlite3.OperationalError:  # the tables are not created yet
            return False
    return roles == [("champion",)] and evaluated == [(0.9,)]


def test_a_15_point_drop_in_live_accuracy_rolls_the_promoted_model_back(settings, tmp_path) -> None:
    settings = settings.replace(monitor_address=f"127.0.0.1:{free_ports()[0]}")
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    data["rollback"] = {**data.get("rollback", {}), "accuracy_drop": {"max_drop": 0.05, "min_samples": WINDOW}}
    goal = parse_goal(data)
    outcome = ev.EvalOutcome(eval_id="eval-7", run_id="run-7", goal_name=goal.name, passed=True,
                             adapter=ev.ArtifactRef(digest=ADAPTER), metrics={"accuracy": 0.9})
    requests, alerts = EventLog(settings, "rollback.requested"), EventLog(settings, "alert.raised")
    monitor = start_process(python("-c", RUN_MONITOR), settings, tmp_path / "monitor.log")
    try:
        publish_signed(settings, [
            Outgoing(ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json()), goal.name),
            Outgoing(ev.EvalPassed(outcome=outcome), goal.name),
            Outgoing(ev.DeploymentPromoted(deployment_id="dep-7", goal_name=goal.name, adapter=ev.ArtifactRef(digest=ADAPTER)),
                     goal.name)])
        wait_for(lambda: _monitor_knows_the_champion(settings), 120, "the monitor to know the champion and its accuracy")

        ids = [uuid7() for _ in range(4 * WINDOW)]
        publish_signed(settings, [Outgoing(ev.InferenceLogged(
            request_id=r, goal_name=goal.name, adapter_digest=ADAPTER, deployment_id="dep-7", variant="champion",
            label="card_arrival", confidence=0.9), goal.name) for r in ids], source="deployer/test")
        # Two windows at the evaluated accuracy, then two 15 points below it.
        rng = np.random.default_rng(21)
        labels = tmp_path / "labels.csv"
        with labels.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["request_id", "label"])
            for i, r in enumerate(ids):
                right = rng.random() < (0.9 if i < 2 * WINDOW else 0.75)
                w.writerow([r, "card_arrival" if right else "lost_or_stolen_card"])
        cli = subprocess.run(python("-c", CLI, "feedback", "--file", str(labels), "--goal", goal.name, "--source", "delayed_label"),
                             env=settings_env(settings), capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0 and f"recorded {4 * WINDOW} feedback" in cli.stdout, cli.stdout + cli.stderr

        [request] = requests.wait(1, 120)
        [alert] = alerts.wait(1, 60, where=lambda e: e.message.kind == "accuracy")
        requests.poll(2.0)
    finally:
        assert stop_process(monitor) == 0
        requests.close()
        alerts.close()
    m = request.message
    assert len(requests.items) == 1 and m.adapter_digest == ADAPTER and m.requested_by == "monitor"
    assert "live accuracy" in m.reason and m.numbers["evaluated_accuracy"] == 0.9 and m.numbers["live_accuracy"] < 0.82
    assert alert.message.severity == "critical" and "rollback requested" in alert.message.details
