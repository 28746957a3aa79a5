"""An artifact reference read from an event is confined to the artifact root before any byte is read: a symlink out of a
local root. URIs outside the root on every backend (a local folder, an S3 API server): tests/integration/kernel/test_blobs_s3.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.errors import InvalidInput


def test_a_symlink_inside_the_root_that_points_out_is_refused(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    ref = store.put_bytes(b"weights")
    (tmp_path / "secret").write_bytes(b"weights")
    link = tmp_path / "store" / "link"
    os.symlink(tmp_path / "secret", link)
    with pytest.raises(InvalidInput, match="outside"):
        store.get_bytes(ev.ArtifactRef(digest=ref.digest, uri=str(link)))
    assert store.get_bytes(ref) == b"weights"          # a reference inside the root still reads
