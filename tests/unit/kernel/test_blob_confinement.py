"""An artifact reference read from an event is confined to the artifact root before any byte is read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.errors import IntegrityError, InvalidInput
from services.kernel.ids import sha256_bytes

DIGEST = sha256_bytes(b"anything")


@pytest.mark.parametrize("uri", [
    "/dev/zero",                       # reads forever
    "/etc/passwd",
    "file:///etc/passwd",
    "{root}/../outside.bin",           # a walk out of the root
    "{root}-sibling/blobs/x",          # a prefix that is not the root folder
    "memory://elsewhere/blob",         # another file system
])
def test_uris_outside_the_root_are_refused_before_any_read(tmp_path: Path, uri: str) -> None:
    root = tmp_path / "store"
    store = BlobStore(str(root))
    (tmp_path / "outside.bin").write_bytes(b"secret")
    ref = ev.ArtifactRef(digest=DIGEST, uri=uri.format(root=root))
    for read in (lambda: store.get_bytes(ref), lambda: store.fetch_file(ref, tmp_path / "out"),
                 lambda: store.fetch_tree(ref, tmp_path / "tree")):
        with pytest.raises(InvalidInput, match="outside the artifact store"):
            read()
    assert not (tmp_path / "out").exists() and not (tmp_path / "tree").exists()


def test_a_symlink_inside_the_root_that_points_out_is_refused(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    ref = store.put_bytes(b"weights")
    (tmp_path / "secret").write_bytes(b"weights")
    link = tmp_path / "store" / "link"
    os.symlink(tmp_path / "secret", link)
    with pytest.raises(InvalidInput, match="outside"):
        store.get_bytes(ev.ArtifactRef(digest=ref.digest, uri=str(link)))
    assert store.get_bytes(ref) == b"weights"          # a reference inside the root still reads


def test_a_blob_longer_than_declared_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "store"))
    ref = store.put_bytes(b"x" * 10_000)
    short = ev.ArtifactRef(digest=ref.digest, uri=ref.uri, size_bytes=100)
    with pytest.raises(IntegrityError, match="longer than its declared 100 bytes"):
        store.get_bytes(short)
    with pytest.raises(IntegrityError, match="longer than its declared"):
        store.fetch_file(short, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert store.get_bytes(ref) == b"x" * 10_000
