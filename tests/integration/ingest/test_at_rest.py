"""Encryption at rest through the real ingest service: a seeded row never lies in clear in the state
folder, and the trainer's own read of the snapshot still returns it (issue 13)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.ingest.settings import IngestSettings
from services.kernel.blobs import BlobStore
from services.kernel.errors import ConfigError
from services.kernel.events import Outgoing
from services.kernel.sealing import MAGIC, init_key_file
from services.kernel.settings import REPO_ROOT
from services.trainer.adapters.parquet_data import load_split
from services.trainer.handlers import registered_dataset
from services.trainer.settings import TrainerSettings
from tests.support import EventLog, publish_signed, start_process, stop_process

pytestmark = pytest.mark.integration
SEEDED = "zebra-quartz-7781 transfer my savings"


def _dataset(path: Path) -> None:
    """300 banking77 rows with the seeded row among them (in a label it shares with real rows)."""
    rows = pd.read_csv(REPO_ROOT / "datasets" / "banking77" / "train.csv").iloc[:300].values.tolist()
    rows.insert(150, [SEEDED, rows[150][1]])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)


def _files_holding(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_seeded_row_is_sealed_at_rest_and_still_trains(settings, artifact_root, tmp_path):
    """On a local artifact folder and on the S3 API server (TUNELINE_ARTIFACT_ROOT=s3://..., the AWS_* variables
    inherited by the service): the snapshot is written there sealed, and the trainer's read of it works."""
    key = settings.state_dir / "keys" / "at-rest.key"
    init_key_file(key)
    data = tmp_path / "data"
    data.mkdir()
    _dataset(data / "seeded.csv")
    s = IngestSettings(**{**settings.model_dump(), "allowed_data_roots": [data], "at_rest_key_file": key, "artifact_root": artifact_root})
    registered = EventLog(s, "dataset.registered")
    proc = start_process([sys.executable, "-c", "from services.cli import main; main()", "ingest", "run"], s, tmp_path / "ingest.log",
                         TUNELINE_AT_REST_KEY_FILE=str(key), TUNELINE_ALLOWED_DATA_ROOTS=json.dumps([str(data)]))
    try:
        publish_signed(s, [Outgoing(ev.DatasetPublished(dataset_name="seeded", uri=str(data / "seeded.csv"), publisher="test"),
                                    "seeded")])
        msg = registered.wait(1, 240)[0].message
    finally:
        stop_process(proc)
        registered.close()

    blobs = BlobStore.from_settings(s)
    assert msg.train.uri.startswith(artifact_root + "/"), "the snapshot is in the configured artifact store"
    # The control: the snapshot's plaintext holds the row byte for byte, so a search of the stored bytes can find it.
    assert SEEDED.encode() in blobs.get_bytes(msg.train)
    stored = [blobs.fs.cat_file(p) for p in blobs.fs.find(artifact_root)]
    assert len(stored) >= 3 and all(d.startswith(MAGIC) and SEEDED.encode() not in d for d in stored), "every artifact is sealed"
    assert _files_holding(s.state_dir, SEEDED.encode()) == []
    assert _files_holding(s.state_dir, SEEDED.split()[0].encode()) == [], "not even the seeded token"

    with pytest.raises(ConfigError, match="no at-rest key is configured"):
        BlobStore(s.artifacts).get_bytes(msg.train)
    trainer = TrainerSettings(**{**settings.model_dump(), "at_rest_key_file": key, "artifact_root": artifact_root})
    dataset = registered_dataset(msg)
    train = load_split(BlobStore.from_settings(trainer), dataset.train, dataset, tmp_path / "scratch" / "train.parquet")
    assert SEEDED in train.texts and len(train.texts) == msg.train_rows
