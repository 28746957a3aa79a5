"""Content-addressed artifacts on a local folder: a failed write never leaves a partial object.

The tamper tests (R20) run on every backend, a local folder and an S3 API server: tests/integration/kernel/test_blobs_s3.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kernel.blobs import BlobStore


def test_a_failed_write_leaves_nothing_under_the_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(str(tmp_path))

    def disk_full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.put_bytes(b"x" * 1000)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "no partial object may remain"
