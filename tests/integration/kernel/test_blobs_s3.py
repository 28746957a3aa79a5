"""The artifact store's contract on each backend it runs on: a local folder, and an S3 API server on loopback
(moto's server mode, a separate process: the `s3_server` fixture) reached through fsspec/s3fs with the
standard AWS_* variables, as a user's deployment reaches S3 or MinIO.

R20 on both: a flipped byte, a truncation or swapped tree files are refused before use, naming the digest,
in clear and sealed at rest (R19's sealing: plaintext digests kept, rotation and reseal); a URI outside the
root (another bucket, a sibling prefix, a `..` walk, another file system) is refused before any read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fsspec
import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.errors import ConfigError, IntegrityError, InvalidInput, NotFound
from services.kernel.ids import sha256_bytes
from services.kernel.sealing import HEADER_BYTES, MAGIC, SEGMENT, TAG_BYTES, init_key_file, keys_of, sealed_size
from services.kernel.settings import Settings
from tests.support import S3Server, adapter_tree

pytestmark = pytest.mark.integration
KEY = bytes(range(32))
ROW = b"zebra-quartz-7781 transfer my savings"


def _at(uri: str) -> tuple[Any, str]:
    """The file system (fsspec's, untyped) and path of a URI or a local path."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, str(path)


def _read(uri: str) -> bytes:
    fs, path = _at(uri)
    return bytes(fs.cat_file(path))


def _write(uri: str, data: bytes) -> None:
    """Replace a stored object behind the store's back: the tampering under test."""
    fs, path = _at(uri)
    fs.pipe_file(path, data)


def _stored(root: str) -> list[bytes]:
    """The bytes of every object stored under a root."""
    fs, base = _at(root)
    return [bytes(fs.cat_file(p)) for p in fs.find(base)]


# ------------------------------------------------------------ R20 in clear

def test_flipped_byte_is_refused_naming_the_digest(artifact_root: str, tmp_path: Path) -> None:
    store = BlobStore(artifact_root)
    ref = store.put_bytes(b"adapter weights" * 100)
    assert ref.uri.startswith(artifact_root + "/"), "consumers get a URI under the configured root (s3:// on S3)"
    data = bytearray(_read(ref.uri))
    data[17] ^= 0x01
    _write(ref.uri, bytes(data))
    with pytest.raises(IntegrityError, match=ref.digest):
        store.get_bytes(ref)
    with pytest.raises(IntegrityError):
        store.fetch_file(ref, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists(), "a file that failed verification must not appear"


def test_truncated_and_swapped_tree_files_are_refused(artifact_root: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "adapter_config.json").write_text('{"r": 8}')
    (src / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    store = BlobStore(artifact_root)
    ref = store.put_tree([("adapter_config.json", src / "adapter_config.json"),
                          ("adapter_model.safetensors", src / "adapter_model.safetensors")])
    assert (store.fetch_tree(ref, tmp_path / "ok") / "adapter_config.json").read_text() == '{"r": 8}'
    _write(f"{ref.uri}/adapter_model.safetensors", b"\x00" * 63)
    with pytest.raises(IntegrityError, match=ref.digest):
        store.fetch_tree(ref, tmp_path / "bad1")
    _write(f"{ref.uri}/adapter_model.safetensors", b"\x00" * 64)
    _write(f"{ref.uri}/.complete", b"adapter_model.safetensors\nadapter_config.json")
    with pytest.raises(IntegrityError):
        store.fetch_tree(ref, tmp_path / "bad2")


def test_same_bytes_same_digest_and_one_object(artifact_root: str) -> None:
    store = BlobStore(artifact_root)
    a, b = store.put_bytes(b"snapshot"), store.put_bytes(b"snapshot")
    assert a.digest == b.digest and a.uri == b.uri
    assert store.get_bytes(a) == b"snapshot"
    assert _stored(artifact_root) == [b"snapshot"]


def test_a_missing_artifact_and_an_unfinished_tree_are_not_found(artifact_root: str, tmp_path: Path) -> None:
    store = BlobStore(artifact_root)
    ref = store.put_bytes(b"snapshot")
    _at(ref.uri)[0].rm_file(_at(ref.uri)[1])
    with pytest.raises(NotFound, match=ref.digest):
        store.get_bytes(ref)
    with pytest.raises(NotFound, match=ref.digest):
        store.fetch_file(ref, tmp_path / "out")
    # A writer that died before the manifest (on S3 trees are written in place, the manifest last) left no tree.
    files = adapter_tree(tmp_path / "adapter", ROW)
    tree = store.put_tree(files)
    _at(tree.uri)[0].rm_file(_at(f"{tree.uri}/.complete")[1])
    with pytest.raises(NotFound, match=tree.digest):
        store.fetch_tree(tree, tmp_path / "t1")
    assert store.put_tree(files) == tree, "putting it again completes it"
    assert (store.fetch_tree(tree, tmp_path / "t2") / "adapter_config.json").read_bytes() == Path(files[0][1]).read_bytes()


# ------------------------------------------------------------ sealed at rest

def test_blobs_files_and_trees_round_trip_sealed_under_their_plaintext_digests(artifact_root: str, tmp_path: Path) -> None:
    plain, sealed = BlobStore(f"{artifact_root}/plain"), BlobStore(f"{artifact_root}/sealed", keys_of(KEY))
    (tmp_path / "snap.parquet").write_bytes(b"PAR1" + ROW * 50)
    files = adapter_tree(tmp_path / "adapter", ROW)
    refs = [(s.put_bytes(ROW), s.put_file(tmp_path / "snap.parquet"), s.put_tree(files)) for s in (plain, sealed)]
    for a, b in zip(*refs, strict=True):
        assert (a.digest, a.size_bytes, a.media_type) == (b.digest, b.size_bytes, b.media_type)
    blob, snap, tree = refs[1]
    assert sealed.get_bytes(blob) == ROW
    assert sealed.fetch_file(snap, tmp_path / "out.parquet").read_bytes() == (tmp_path / "snap.parquet").read_bytes()
    out = sealed.fetch_tree(tree, tmp_path / "tree-out")
    assert [(out / n).read_bytes() for n, _ in files] == [Path(p).read_bytes() for _, p in files]
    stored = _stored(f"{artifact_root}/sealed")
    assert len(stored) == 5 and all(d.startswith(MAGIC) and ROW not in d for d in stored)  # blob, file, 2 tree files, manifest
    assert any(ROW in d for d in _stored(f"{artifact_root}/plain")), "the control store holds the row in clear"
    assert len(_read(blob.uri)) == sealed_size(len(ROW))


def test_a_multi_segment_file_round_trips_and_costs_one_tag_per_segment(artifact_root: str, tmp_path: Path) -> None:
    store = BlobStore(artifact_root, keys_of(KEY))
    for size in (3 * SEGMENT + 12345, 2 * SEGMENT, 0):  # a partial last segment, an exact multiple, empty
        src = tmp_path / f"big-{size}.bin"
        src.write_bytes(os.urandom(size))
        ref = store.put_file(src)
        segments = max(1, -(-size // SEGMENT))
        assert len(_read(ref.uri)) == sealed_size(size) == HEADER_BYTES + size + TAG_BYTES * segments
        assert store.fetch_file(ref, tmp_path / "out.bin").read_bytes() == src.read_bytes()
        assert store.get_bytes(ref) == src.read_bytes()


def test_plaintext_written_before_the_key_still_reads_and_is_sealed_when_put_again(artifact_root: str, tmp_path: Path) -> None:
    (tmp_path / "snap.parquet").write_bytes(b"PAR1" + ROW)
    files = adapter_tree(tmp_path / "adapter", ROW)
    old = BlobStore(artifact_root)
    blob, snap, tree = old.put_bytes(ROW), old.put_file(tmp_path / "snap.parquet"), old.put_tree(files)
    keyed = BlobStore(artifact_root, keys_of(KEY))
    assert keyed.get_bytes(blob) == ROW
    assert keyed.fetch_file(snap, tmp_path / "out").read_bytes() == b"PAR1" + ROW
    assert (keyed.fetch_tree(tree, tmp_path / "t1") / "adapter_config.json").read_bytes() == Path(files[0][1]).read_bytes()
    # Tampering with old plaintext is still caught by its digest.
    _write(blob.uri, ROW[:-1] + b"!")
    with pytest.raises(IntegrityError, match=blob.digest):
        keyed.get_bytes(blob)
    assert [keyed.put_bytes(ROW), keyed.put_file(tmp_path / "snap.parquet"), keyed.put_tree(files)] == [blob, snap, tree]
    assert all(d.startswith(MAGIC) for d in _stored(artifact_root))
    assert keyed.get_bytes(blob) == ROW
    assert (keyed.fetch_tree(tree, tmp_path / "t2") / "adapter_model.safetensors").read_bytes() == Path(files[1][1]).read_bytes()


@pytest.mark.parametrize("offset", [0, 9, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 5, -1])
def test_a_changed_byte_anywhere_fails_authentication(artifact_root: str, tmp_path: Path, offset: int) -> None:
    store = BlobStore(artifact_root, keys_of(KEY))
    ref = store.put_bytes(ROW * 10)
    data = bytearray(_read(ref.uri))
    data[offset] ^= 0x01
    _write(ref.uri, bytes(data))
    # A flipped magic byte leaves plaintext that fails its digest; a flipped key id names an unknown key.
    expected = ConfigError if 8 <= offset % len(data) < 16 else IntegrityError
    with pytest.raises(expected, match=ref.digest):
        store.get_bytes(ref)
    with pytest.raises(expected):
        store.fetch_file(ref, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_reordered_and_extended_files_are_refused(artifact_root: str, tmp_path: Path) -> None:
    store = BlobStore(artifact_root, keys_of(KEY))
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * SEGMENT))
    ref = store.put_file(src)
    sealed = _read(ref.uri)
    seg = SEGMENT + TAG_BYTES
    header, parts = sealed[:HEADER_BYTES], [sealed[HEADER_BYTES + i * seg:HEADER_BYTES + (i + 1) * seg] for i in range(3)]
    variants = {
        "cut at a segment boundary": header + parts[0] + parts[1],
        "cut mid-segment": sealed[:-100],
        "segments reordered": header + parts[1] + parts[0] + parts[2],
        "a segment appended": sealed + parts[2],
    }
    for what, data in variants.items():
        _write(ref.uri, data)
        with pytest.raises(IntegrityError, match=ref.digest):
            store.fetch_file(ev.ArtifactRef(digest=ref.digest, uri=ref.uri), tmp_path / "out")
        assert not (tmp_path / "out").exists(), what


def test_one_objects_sealed_bytes_in_anothers_place_fail(artifact_root: str, tmp_path: Path) -> None:
    store = BlobStore(artifact_root, keys_of(KEY))
    a, b = store.put_bytes(b"champion weights"), store.put_bytes(b"failed candidate weights")
    _write(a.uri, _read(b.uri))
    with pytest.raises(IntegrityError, match="swapped"):
        store.get_bytes(a)
    tree = store.put_tree(adapter_tree(tmp_path / "adapter", ROW))
    config, model = _read(f"{tree.uri}/adapter_config.json"), _read(f"{tree.uri}/adapter_model.safetensors")
    _write(f"{tree.uri}/adapter_config.json", model)
    _write(f"{tree.uri}/adapter_model.safetensors", config)
    with pytest.raises(IntegrityError, match="swapped"):
        store.fetch_tree(tree, tmp_path / "out")


def test_rotation_keeps_old_objects_readable_until_resealed(artifact_root: str, tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "at-rest.key"
    first = init_key_file(key_file)
    settings = Settings(state_dir=tmp_path / "state", artifact_root=artifact_root, at_rest_key_file=key_file)
    old = BlobStore.from_settings(settings)
    files = adapter_tree(tmp_path / "adapter", ROW)
    blob, tree = old.put_bytes(ROW), old.put_tree(files)
    plain = BlobStore(artifact_root).put_bytes(b"written before any key")
    second = init_key_file(key_file, rotate=True)
    rotated = BlobStore.from_settings(settings)
    assert rotated.get_bytes(blob) == ROW and first != second
    done = rotated.reseal()
    assert (done.blobs, done.trees, done.current) == (2, 1, 0)
    assert all(d[8:16].hex() == second for d in _stored(artifact_root))
    key_file.write_text(key_file.read_text().splitlines()[0] + "\n")  # the old key retired
    newest = BlobStore.from_settings(settings)
    assert newest.get_bytes(blob) == ROW and newest.get_bytes(plain) == b"written before any key"
    assert (newest.fetch_tree(tree, tmp_path / "out") / "adapter_config.json").read_bytes() == Path(files[0][1]).read_bytes()
    assert newest.reseal().current == 3


# ------------------------------------------------------------ confinement

@pytest.mark.parametrize("uri", [
    "/dev/zero",                       # reads forever
    "/etc/passwd",
    "file:///etc/passwd",
    "{root}/../outside.bin",           # a walk out of the root
    "{root}/blobs/../../outside.bin",
    "{root}-sibling/blobs/x",          # a prefix that is not the root folder
    "memory://elsewhere/blob",         # another file system
    "s3://tuneline-other/blobs/x",     # another bucket (on S3, one that exists and holds the object)
])
def test_uris_outside_the_root_are_refused_before_any_read(artifact_root: str, tmp_path: Path, uri: str) -> None:
    store = BlobStore(artifact_root)
    parent = artifact_root.rsplit("/", 1)[0]
    outside = [f"{parent}/outside.bin", f"{artifact_root}-sibling/blobs/x"]
    if artifact_root.startswith("s3://"):
        outside.append("s3://tuneline-other/blobs/x")
    for where in outside:  # each outside object exists (on S3 another bucket is made): a read would find it
        fs, path = _at(where)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, b"secret")
    ref = ev.ArtifactRef(digest=sha256_bytes(b"anything"), uri=uri.format(root=artifact_root))
    for read in (lambda: store.get_bytes(ref), lambda: store.fetch_file(ref, tmp_path / "out"),
                 lambda: store.fetch_tree(ref, tmp_path / "tree")):
        with pytest.raises(InvalidInput, match="outside the artifact store"):
            read()
    assert not (tmp_path / "out").exists() and not (tmp_path / "tree").exists()


@pytest.mark.parametrize("sealed", [False, True], ids=["clear", "sealed"])
def test_a_blob_longer_than_declared_is_refused_without_reading_it_all(artifact_root: str, tmp_path: Path, sealed: bool) -> None:
    store = BlobStore(artifact_root, keys_of(KEY) if sealed else None)
    ref = store.put_bytes(b"x" * 10_000)
    short = ev.ArtifactRef(digest=ref.digest, uri=ref.uri, size_bytes=100)
    with pytest.raises(IntegrityError, match="longer than its declared 100 bytes"):
        store.get_bytes(short)
    with pytest.raises(IntegrityError, match="longer than its declared 100 bytes"):
        store.fetch_file(short, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert store.get_bytes(ref) == b"x" * 10_000


def test_the_s3_store_is_the_server_named_by_the_aws_variables(s3_server: S3Server) -> None:
    """The endpoint comes from AWS_ENDPOINT_URL (botocore reads it; s3fs passes it on): the objects land on the server."""
    store = BlobStore(s3_server.root("endpoint-check"))
    ref = store.put_bytes(b"on the server")
    assert ref.uri.startswith(f"s3://{S3Server.BUCKET}/endpoint-check/blobs/sha256/")
    assert store.fs.s3.meta.endpoint_url == s3_server.endpoint
    assert _read(ref.uri) == b"on the server"
