"""training.prepare: the envelope names the exact data, so one changed row changes its digest."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.kernel.blobs import BlobStore
from services.kernel.errors import IntegrityError
from services.kernel.goal import load_goal
from services.kernel.ids import digest_json
from services.kernel.settings import REPO_ROOT
from services.trainer import training
from services.trainer.adapters import ray_training
from services.trainer.domain.runs import RegisteredDataset, Snapshot
from services.trainer.settings import TrainerSettings

GOAL = load_goal(REPO_ROOT / "goals" / "banking77.yaml")
ROWS = [("my card is lost", "lost_card"), ("how do i transfer money", "transfer"), ("what is my balance", "balance")] * 4


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_training, "ensure_ray", lambda options: None)
    monkeypatch.setattr(ray_training, "gpus_visible", lambda: False)


def _dataset(blobs: BlobStore, tmp_path: Path, rows: list[tuple[str, str]], tag: str) -> RegisteredDataset:
    refs = []
    for split in ("train", "eval"):
        path = tmp_path / f"{tag}-{split}.parquet"
        pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [y for _, y in rows]}), path)
        refs.append(blobs.put_file(path, "application/vnd.apache.parquet"))
    return RegisteredDataset("banking77", digest_json([r.digest for r in refs]), Snapshot(refs[0].digest, refs[0].uri),
                             Snapshot(refs[1].digest, refs[1].uri), sorted({y for _, y in rows}))


def test_one_changed_row_changes_the_envelope_digest(tmp_path: Path, no_ray: None) -> None:
    settings = TrainerSettings(state_dir=tmp_path / "state", code_version="test")
    blobs = BlobStore.from_settings(settings)
    same_a = training.prepare(settings, blobs, GOAL, _dataset(blobs, tmp_path, ROWS, "a"), tmp_path / "a")
    same_b = training.prepare(settings, blobs, GOAL, _dataset(blobs, tmp_path, ROWS, "b"), tmp_path / "b")
    changed_rows = [("my card was stolen", "lost_card"), *ROWS[1:]]
    changed = training.prepare(settings, blobs, GOAL, _dataset(blobs, tmp_path, changed_rows, "c"), tmp_path / "c")
    assert same_a.envelope.digest == same_b.envelope.digest
    assert changed.envelope.digest != same_a.envelope.digest
    assert same_a.envelope.world_size == GOAL.training.workers and same_a.cfg.texts[0] == "my card is lost"
    assert same_a.envelope.dependency_lock.startswith("sha256:")


def test_a_snapshot_whose_bytes_do_not_match_its_digest_is_refused(tmp_path: Path, no_ray: None) -> None:
    settings = TrainerSettings(state_dir=tmp_path / "state")
    blobs = BlobStore.from_settings(settings)
    dataset = _dataset(blobs, tmp_path, ROWS, "a")
    forged = RegisteredDataset(dataset.name, dataset.version, Snapshot("sha256:" + "0" * 64, dataset.train.uri),
                               dataset.eval, dataset.labels)
    with pytest.raises(IntegrityError):
        training.prepare(settings, blobs, GOAL, forged, tmp_path / "x")


def test_a_private_goal_puts_its_plan_in_the_loop_and_the_envelope(tmp_path: Path, no_ray: None) -> None:
    from services.kernel.errors import InvalidInput

    settings = TrainerSettings(state_dir=tmp_path / "state", code_version="test")
    blobs = BlobStore.from_settings(settings)
    rows = ROWS * 50  # 600 rows: delta 1e-5 < 1/600
    spec = {"epsilon": 3.0, "delta": 1e-5}
    goal = GOAL.replace(training=GOAL.training.replace(batch_size=30, epochs=2, privacy=spec))
    prepared = training.prepare(settings, blobs, goal, _dataset(blobs, tmp_path, rows, "p"), tmp_path / "p")
    plan = prepared.cfg.privacy
    assert plan is not None and plan.sample_rate == 30 / 600 and plan.steps == plan.planned_steps == 40
    assert prepared.envelope.privacy == plan.as_dict() and prepared.envelope.privacy["epsilon_budget"] == 3.0
    plain = training.prepare(settings, blobs, GOAL, _dataset(blobs, tmp_path, rows, "q"), tmp_path / "q")
    assert plain.cfg.privacy is None and plain.envelope.privacy is None
    loose = goal.replace(training=goal.training.replace(privacy={"epsilon": 3.0, "delta": 0.005}))
    with pytest.raises(InvalidInput, match=r"training.privacy.delta: 0.005 is not below 1/n = 1/600"):
        training.prepare(settings, blobs, loose, _dataset(blobs, tmp_path, rows, "r"), tmp_path / "r")
