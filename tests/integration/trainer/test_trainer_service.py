"""`tuneline trainer run` through the real broker and Ray: a goal meets a dataset, the service is
SIGKILLed mid-run and resumes the same run (R15), runs that cannot succeed fail once (R16, R26)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.artifact_signing import verify_adapter_signature
from services.kernel.blobs import BlobStore
from services.kernel.events import Outgoing
from services.kernel.goal import load_goal
from services.kernel.ids import digest_json
from services.kernel.modeling import resolve_base_model
from services.kernel.settings import REPO_ROOT, Settings
from services.kernel.store import outbox
from tests.support import EventLog, publish_signed, settings_env, start_process, wait_for

pytestmark = pytest.mark.integration
TINY_TRAINING = {"epochs": 1, "batch_size": 16, "max_length": 32, "workers": 2, "checkpoint_every_steps": 3,
                 "max_failures": 1}


def _goal_file(tmp_path: Path, name: str, dataset: str, **top) -> Path:
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    data.update(name=name, training={**data["training"], **TINY_TRAINING}, data={**data["data"], "dataset": dataset}, **top)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _register(settings: Settings, tmp_path: Path, name: str, tiny_rows) -> ev.DatasetRegistered:
    blobs = BlobStore.from_settings(settings)
    refs = []
    for split, frame in (("train", tiny_rows(200)), ("eval", tiny_rows(40, offset=200))):
        path = tmp_path / f"{name}-{split}.parquet"
        pq.write_table(pa.table({"text": frame.text.tolist(), "label": frame.label.tolist()}), path)
        refs.append(blobs.put_file(path, "application/vnd.apache.parquet"))
    labels = sorted(set(tiny_rows(200).label) | set(tiny_rows(40, offset=200).label))
    return ev.DatasetRegistered(dataset_name=name, dataset_version=digest_json([r.digest for r in refs]), train=refs[0],
                                eval=refs[1], labels=labels, text_field="text", label_field="label")


def _publish(settings: Settings, *messages) -> None:
    publish_signed(settings, [Outgoing(m, subject=getattr(m, "goal_name", "") or m.dataset_name) for m in messages])


def _apply(settings: Settings, path: Path) -> ev.GoalApplied:
    goal = load_goal(path)
    return ev.GoalApplied(goal_name=goal.name, goal_version=goal.version, goal_json=goal.canonical_json())


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from services.cli import main; main()", *args], cwd=REPO_ROOT,
                          env=settings_env(settings, TUNELINE_RAY_NUM_CPUS="2"), capture_output=True, text=True, timeout=900)


def _start(settings: Settings, tmp_path: Path, **env: str):
    return start_process([sys.executable, "-c", "from services.cli import main; main()", "trainer", "run"], settings,
                         tmp_path / "trainer.log", TUNELINE_RAY_NUM_CPUS="2", **env)


def _kill_tree(proc) -> None:
    """SIGKILL the service and then whatever Ray processes it started that outlived it (by pid)."""
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    for child in children:
        try:
            child.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass


def _unsent(settings: Settings) -> int:
    engine = sa.create_engine(settings.store_url_for("trainer"))
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))).scalar_one()
    engine.dispose()
    return int(n)


def test_killed_trainer_resumes_the_same_run_and_finishes_it_once(settings: Settings, tmp_path: Path, banking_rows,
                                                                  ray_probe) -> None:
    checkpoints, _ = ray_probe
    registered = _register(settings, tmp_path, "tiny-banking", banking_rows)
    applied = _cli(settings, "goal", "apply", str(_goal_file(tmp_path, "tiny-goal", "tiny-banking")))
    assert applied.returncode == 0 and "applied goal" in applied.stdout, applied.stderr
    _publish(settings, registered)
    started, finished = EventLog(settings, "run.started"), EventLog(settings, "run.finished")
    proc = _start(settings, tmp_path)
    try:
        [first] = started.wait(1, 600)
        run_id = first.message.run_id
        wait_for(lambda: checkpoints(settings.state_dir / "trainer" / "ray", run_id), 900, "a committed checkpoint", 0.05)
        _kill_tree(proc)
        proc = _start(settings, tmp_path)
        [done] = finished.wait(1, 900)
        wait_for(lambda: _unsent(settings) == 0, 60, "the outbox drained")
        finished.poll(3.0)
        started.wait(2, 120)
    finally:
        _kill_tree(proc)
    assert [f.message.run_id for f in finished.items] == [run_id]  # exactly one run.finished, the same run
    msg = done.message
    assert msg.status == "succeeded" and msg.adapter.digest.startswith("sha256:") and msg.envelope_digest
    assert msg.metrics["resumed_from_step"] >= 3 and msg.attempts == 2
    assert [s.message.attempt for s in started.items] == [1, 2]
    blobs = BlobStore.from_settings(settings)
    fetched = blobs.fetch_tree(msg.adapter, tmp_path / "fetched")
    # Signed by the trainer (model-signing) over exactly the stored files; the signature is not part of the tree.
    verify_adapter_signature(settings, fetched, blobs.get_bytes(msg.adapter_signature), msg.adapter.digest)
    shown = _cli(settings, "runs", run_id)
    assert shown.returncode == 0 and msg.adapter.digest in shown.stdout and msg.envelope_digest in shown.stdout
    # The resumed run, re-run from its envelope in one go, gives the same bytes (bit-identical on CPU).
    reproduced = _cli(settings, "runs", "reproduce", run_id)
    assert reproduced.returncode == 0 and "matches" in reproduced.stdout, reproduced.stdout + reproduced.stderr


def test_runs_that_cannot_succeed_fail_once_with_the_reason_and_register_nothing(settings: Settings, tmp_path: Path, banking_rows) -> None:
    pickled = tmp_path / "pickled-model"
    shutil.copytree(resolve_base_model("bundled:all-MiniLM-L6-v2"), pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04cos\nsystem\n")
    registered = _register(settings, tmp_path, "tiny-banking", banking_rows)
    goals = [_goal_file(tmp_path, "diverges", "tiny-banking"),
             _goal_file(tmp_path, "pickled", "tiny-banking", base_model=str(pickled))]
    _publish(settings, registered, *[_apply(settings, g) for g in goals])
    finished = EventLog(settings, "run.finished")
    proc = _start(settings, tmp_path, TUNELINE_EXPLODE_GRAD_NORM="1e-9")
    try:
        found = finished.wait(2, 900)
        wait_for(lambda: _unsent(settings) == 0, 60, "the outbox drained")
        finished.poll(3.0)
    finally:
        _kill_tree(proc)
    by_goal = {f.message.goal_name: f.message for f in found}
    assert sorted(f.message.goal_name for f in finished.items) == ["diverges", "pickled"]
    assert by_goal["diverges"].status == "failed" and "exploding gradient norm" in by_goal["diverges"].failure_reason
    assert by_goal["pickled"].status == "failed" and "pickle" in by_goal["pickled"].failure_reason
    assert all(not m.adapter.digest for m in by_goal.values())
    assert not list((Path(settings.artifacts)).rglob("adapter_model.safetensors"))
