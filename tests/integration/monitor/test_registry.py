"""The registry on the real broker: a monitor process records a goal's events in its ledger, and from a
second shell (its own empty state folder, only the monitor's address and a token) `tuneline models`,
`runs`, `runs compare`, `evals`, `datasets` and `goals` answer from the monitor's Registry API. Stages
follow the events; another tenant's token sees none of it; a predict-only token is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tuneline.events.v1 import events_pb2 as ev

from services.evaluator.adapters.parquet import write_eval_data
from services.evaluator.domain import gate
from services.evaluator.domain.metrics import classification_metrics
from services.evaluator.domain.report import EvalReport, Findings, Identity, measurements, report_json
from services.evaluator.evaluation import EvalData
from services.kernel import credentials
from services.kernel.blobs import BlobStore
from services.kernel.events import Outgoing
from services.kernel.goal import Goal, parse_goal
from services.kernel.settings import REPO_ROOT, Settings
from services.trainer.domain.envelope import Envelope, Hardware
from tests.support import free_ports, publish_signed, python, settings_env, start_process, stop_process, wait_for

pytestmark = pytest.mark.integration
RUN_MONITOR = "import sys; sys.argv = ['tuneline', 'monitor', 'run']; from services.cli import main; main()"
CLI = "import sys; sys.argv = ['tuneline', *sys.argv[1:]]; from services.cli import main; main()"
LABELS = ["card_arrival", "lost_or_stolen_card", "refund_not_showing_up"]
TRUTH = ["card_arrival", "lost_or_stolen_card", "refund_not_showing_up", "card_arrival", "lost_or_stolen_card", "card_arrival"]
TEXTS = ["where is my card", "I lost my card", "no refund yet", "card not here", "stolen <script>alert(1)</script>",
         "when will it come"]
PRED_A = ["card_arrival", "card_arrival", "refund_not_showing_up", "card_arrival", "card_arrival", "lost_or_stolen_card"]
PRED_B = ["card_arrival", "lost_or_stolen_card", "refund_not_showing_up", "card_arrival", "lost_or_stolen_card", "card_arrival"]
DIGEST = {k: "sha256:" + c * 64 for k, c in (("a", "a"), ("b", "b"), ("c", "c"))}


def _goal(epochs: int) -> Goal:
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    return parse_goal({**data, "tenant": "acme", "training": {**data["training"], "epochs": epochs}})


def _run(settings: Settings, blobs: BlobStore, key: str, goal: Goal, eval_ref: ev.ArtifactRef, predicted: list[str],
         version: str) -> list[Outgoing]:
    """A run's run.started, run.finished (real envelope) and gate decision (a real evaluator report)."""
    run_id, eval_id = f"run-{key}-0001", f"eval-{key}-0001"
    envelope = Envelope(code_version="0.4.0", dependency_lock="sha256:lock", goal_name=goal.name, goal_version=goal.version,
                        goal_json=goal.canonical_json(), dataset_name="banking77", dataset_version=version, train_digest="sha256:t",
                        eval_digest=eval_ref.digest, train_uri="", eval_uri=eval_ref.uri, seeds={"train": 17}, world_size=2,
                        use_gpu=False, hardware=Hardware("cpu", "x86_64", 1, "2.9", "2.51", "5.0", "0.17", "3.11"), labels=LABELS)
    env_ref = blobs.put_bytes(envelope.to_json(), "application/json")
    index = {label: i for i, label in enumerate(LABELS)}
    metrics = classification_metrics(np.array([index[t] for t in TRUTH]), np.array([index[p] for p in predicted]), LABELS)
    findings = Findings(metrics, None, None, None, None, None, None, "no champion serving", (), predicted=tuple(predicted),
                        truth=tuple(TRUTH))
    decision = gate.judge(goal.acceptance, measurements(findings))
    identity = Identity(eval_id, run_id, goal.name, goal.version, "banking77", version, "bundled:all-MiniLM-L6-v2", "lora",
                        DIGEST[key], eval_ref.digest, "2026-12-04T00:00:00Z")
    report = blobs.put_bytes(report_json(EvalReport(identity, findings, decision)), "application/json")
    passed = key != "c"
    outcome = ev.EvalOutcome(eval_id=eval_id, run_id=run_id, goal_name=goal.name, goal_version=goal.version,
                             dataset_version=version, adapter=ev.ArtifactRef(digest=DIGEST[key]), passed=passed, report_json=report,
                             metrics={"accuracy": metrics.accuracy}, summary="all criteria met" if passed else "accuracy below 0.85",
                             criteria=[ev.Criterion(name="accuracy", value=metrics.accuracy, threshold=0.5, comparator="min",
                                                    computed=True, passed=passed)])
    return [Outgoing(ev.RunStarted(run_id=run_id, goal_name=goal.name, goal_version=goal.version, dataset_name="banking77",
                                   dataset_version=version, attempt=1), goal.name),
            Outgoing(ev.RunFinished(run_id=run_id, goal_name=goal.name, goal_version=goal.version, dataset_name="banking77",
                                    dataset_version=version, status="succeeded", adapter=ev.ArtifactRef(digest=DIGEST[key]),
                                    envelope=env_ref, envelope_digest=env_ref.digest, eval_data=eval_ref, text_field="text",
                                    label_field="label", method="lora", metrics={"eval_accuracy": metrics.accuracy}), goal.name),
            Outgoing((ev.EvalPassed if passed else ev.EvalFailed)(outcome=outcome), goal.name)]


def _cli(settings: Settings, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(python("-c", CLI, *args), env=settings_env(settings, TUNELINE_GRPC_TOKEN=token, COLUMNS="250"),
                          capture_output=True, text=True, timeout=120)


def test_the_registry_answers_a_second_shell_with_stages_from_the_events(settings, tmp_path: Path) -> None:
    settings = settings.replace(monitor_address=f"127.0.0.1:{free_ports()[0]}", grpc_tokens=[])
    path = credentials.credentials_path(settings)
    acme, globex, predict = (credentials.issue(path, name, tenant, scopes, None)[0] for name, tenant, scopes in (
        ("acme-audit", "acme", ["audit"]), ("globex-audit", "globex", ["audit"]), ("acme-predict", "acme", ["predict"])))
    blobs = BlobStore.from_settings(settings)
    eval_ref = blobs.put_bytes(write_eval_data(EvalData(tuple(TEXTS), tuple(TRUTH), None)), "application/vnd.apache.parquet")
    v1, v2 = _goal(3), _goal(1)
    monitor = start_process(python("-c", RUN_MONITOR), settings, tmp_path / "monitor.log")
    deploy: dict[str, Any] = {"goal_name": v1.name, "goal_version": v1.version}
    try:
        publish_signed(settings, [
            *(Outgoing(ev.GoalApplied(goal_name=g.name, goal_version=g.version, goal_json=g.canonical_json(), applied_by="ml-eng"),
                       g.name) for g in (v1, v2)),
            Outgoing(ev.DatasetRegistered(dataset_name="banking77", dataset_version="sha256:" + "1" * 64, train_rows=900, eval_rows=6,
                                          labels=LABELS, publisher="upstream", certificate=[ev.GateResult(gate="schema", passed=True)]),
                     "banking77"),
            Outgoing(ev.DatasetRejected(dataset_name="banking77", publisher="upstream", summary="pii gate: 3 unscrubbed e-mails"),
                     "banking77"),
            *_run(settings, blobs, "a", v1, eval_ref, PRED_A, "sha256:" + "1" * 64),
            Outgoing(ev.DeploymentStarted(deployment_id="dep-a", adapter=ev.ArtifactRef(digest=DIGEST["a"]), strategy="canary",
                                          run_id="run-a-0001", **deploy), v1.name),
            Outgoing(ev.DeploymentPromoted(deployment_id="dep-a", adapter=ev.ArtifactRef(digest=DIGEST["a"]), reason="first model",
                                           **deploy), v1.name),
            *_run(settings, blobs, "b", v2, eval_ref, PRED_B, "sha256:" + "2" * 64),
            Outgoing(ev.DeploymentStarted(deployment_id="dep-b", adapter=ev.ArtifactRef(digest=DIGEST["b"]), strategy="canary",
                                          traffic_percent=10, champion_digest=DIGEST["a"], **deploy), v1.name),
            Outgoing(ev.DeploymentPromoted(deployment_id="dep-b", adapter=ev.ArtifactRef(digest=DIGEST["b"]),
                                           previous_champion_digest=DIGEST["a"], **deploy), v1.name),
            *_run(settings, blobs, "c", v2, eval_ref, PRED_A, "sha256:" + "2" * 64)])

        shell = Settings(state_dir=tmp_path / "second-shell", monitor_address=settings.monitor_address, kafka_bootstrap="127.0.0.1:1")

        def listed() -> str:
            shown = _cli(shell, acme, "models", v1.name, "--history")
            return shown.stdout if shown.returncode == 0 else ""
        wait_for(lambda: "refused" in listed(), 120, "the monitor to have recorded the three models")

        models = _cli(shell, acme, "models", v1.name, "--history").stdout
        rows = {k: [line for line in models.splitlines() if "│" in line and d[7:19] in line] for k, d in DIGEST.items()}
        stages = {k: [s for s in ("candidate", "canary", "champion", "retired", "refused") if f" {s} " in row[0]]
                  for k, row in rows.items()}
        assert stages == {"a": ["retired"], "b": ["champion"], "c": ["refused"]}, models
        assert f"replaced by {DIGEST['b'][:19]}" in models, "the retired champion's history says what replaced it"

        runs = _cli(shell, acme, "runs").stdout
        assert all(f"run-{k}-0001" in runs for k in "abc"), runs
        one = _cli(shell, acme, "runs", "run-a")
        assert one.returncode == 0 and "(verified)" in one.stdout and '"world_size": 2' in one.stdout, one.stdout + one.stderr

        html = tmp_path / "compare.html"
        compared = _cli(shell, acme, "runs", "compare", "run-a-0001", "run-b-0001", "--html", str(html))
        out = compared.stdout
        assert compared.returncode == 0, out + compared.stderr
        assert "goal.training.epochs" in out and "dataset_version" in out, f"the config and the data differ: {out}"
        # A is right on rows 0, 2 and 3, B on every row: only B is right on rows 1, 4 and 5.
        assert "only A right 0, only B right 3" in out and "3 rows changed answer" in out, out
        assert "I lost my card" in out, "the changed rows come with their text from the eval split"
        page = html.read_text()
        assert page.startswith("<!doctype html>") and "goal.training.epochs" in page and "only B right 3" in page
        assert "stolen &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page, "a text is never markup"

        evals = _cli(shell, acme, "evals")
        assert evals.returncode == 0 and "eval-c-0001" in evals.stdout.replace("…", ""), evals.stdout
        shown = _cli(shell, acme, "evals", "eval-b")
        assert "PASSED" in shown.stdout and "accuracy" in shown.stdout, shown.stdout
        datasets = _cli(shell, acme, "datasets").stdout
        assert "registered" in datasets and "rejected" in datasets and "pii gate" in datasets, datasets
        goals = _cli(shell, acme, "goals").stdout
        assert v1.version[7:19] in goals and v2.version[7:19] in goals and "ml-eng" in goals, goals

        # Another tenant sees nothing of acme's; a token without the audit scope is refused.
        assert "no models in the registry" in _cli(shell, globex, "models").stdout
        assert "no runs in the registry" in _cli(shell, globex, "runs").stdout
        other = _cli(shell, globex, "runs", "compare", "run-a-0001", "run-b-0001")
        assert other.returncode != 0 and "no finished run" in other.stdout + other.stderr
        refused = _cli(shell, predict, "models")
        assert refused.returncode != 0 and "audit" in refused.stdout + refused.stderr
    finally:
        assert stop_process(monitor) == 0
    assert not (tmp_path / "second-shell" / "stores").exists(), "the second shell read nothing locally"
