"""Encryption at rest: sealed blobs and trees keep their plaintext digests, and any wrong key, missing key
or altered byte is a clear error, never garbage."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.errors import ConfigError, IntegrityError
from services.kernel.sealing import (
    HEADER_BYTES,
    MAGIC,
    SEGMENT,
    TAG_BYTES,
    init_key_file,
    key_id,
    keys_of,
    load_keys,
    sealed_size,
)
from services.kernel.settings import Settings

KEY, OTHER = bytes(range(32)), bytes(range(1, 33))
ROW = b"zebra-quartz-7781 transfer my savings"


def _tree(folder: Path) -> list[tuple[str, str | Path]]:
    folder.mkdir()
    (folder / "adapter_config.json").write_bytes(b'{"r": 8, "note": "' + ROW + b'"}')
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(3000) + ROW)
    return [("adapter_config.json", folder / "adapter_config.json"), ("adapter_model.safetensors", folder / "adapter_model.safetensors")]


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_blobs_files_and_trees_round_trip_sealed_under_their_plaintext_digests(tmp_path: Path) -> None:
    plain, sealed = BlobStore(str(tmp_path / "plain")), BlobStore(str(tmp_path / "sealed"), keys_of(KEY))
    (tmp_path / "snap.parquet").write_bytes(b"PAR1" + ROW * 50)
    files = _tree(tmp_path / "adapter")
    refs = [(s.put_bytes(ROW), s.put_file(tmp_path / "snap.parquet"), s.put_tree(files)) for s in (plain, sealed)]
    for a, b in zip(*refs, strict=True):
        assert (a.digest, a.size_bytes, a.media_type) == (b.digest, b.size_bytes, b.media_type)
    blob, snap, tree = refs[1]
    assert sealed.get_bytes(blob) == ROW
    assert sealed.fetch_file(snap, tmp_path / "out.parquet").read_bytes() == (tmp_path / "snap.parquet").read_bytes()
    out = sealed.fetch_tree(tree, tmp_path / "tree-out")
    assert [(out / n).read_bytes() for n, _ in files] == [Path(p).read_bytes() for _, p in files]
    stored = _stored_files(tmp_path / "sealed")
    assert stored and all(p.read_bytes().startswith(MAGIC) and ROW not in p.read_bytes() for p in stored)
    assert any(ROW in p.read_bytes() for p in _stored_files(tmp_path / "plain")), "the control store holds the row in clear"
    assert Path(blob.uri).stat().st_size == sealed_size(len(ROW))


def test_a_multi_segment_file_round_trips_and_costs_one_tag_per_segment(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "store"), keys_of(KEY))
    for size in (3 * SEGMENT + 12345, 2 * SEGMENT, 0):  # a partial last segment, an exact multiple, empty
        src = tmp_path / f"big-{size}.bin"
        src.write_bytes(os.urandom(size))
        ref = store.put_file(src)
        segments = max(1, -(-size // SEGMENT))
        assert Path(ref.uri).stat().st_size == sealed_size(size) == HEADER_BYTES + size + TAG_BYTES * segments
        assert store.fetch_file(ref, tmp_path / "out.bin").read_bytes() == src.read_bytes()
        assert store.get_bytes(ref) == src.read_bytes()


def test_a_wrong_key_is_named_with_both_key_ids(tmp_path: Path) -> None:
    ref = BlobStore(str(tmp_path), keys_of(KEY)).put_bytes(ROW)
    other = BlobStore(str(tmp_path), keys_of(OTHER))
    message = f"sealed with at-rest key {key_id(KEY).hex()}, but the configured key is {key_id(OTHER).hex()}"
    with pytest.raises(ConfigError, match=message):
        other.get_bytes(ref)
    with pytest.raises(ConfigError, match=message):
        other.fetch_file(ref, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_sealed_object_read_without_a_key_is_refused_not_returned(tmp_path: Path) -> None:
    keyed = BlobStore(str(tmp_path), keys_of(KEY))
    ref, tree = keyed.put_bytes(ROW), keyed.put_tree(_tree(tmp_path / "adapter"))
    unkeyed = BlobStore(str(tmp_path))
    for read in (lambda: unkeyed.get_bytes(ref), lambda: unkeyed.fetch_file(ref, tmp_path / "out"),
                 lambda: unkeyed.fetch_tree(tree, tmp_path / "tree-out")):
        with pytest.raises(ConfigError, match=f"sealed \\(at-rest key {key_id(KEY).hex()}\\), but no at-rest key is configured"):
            read()


def test_plaintext_written_before_the_key_still_reads_and_is_sealed_when_put_again(tmp_path: Path) -> None:
    (tmp_path / "snap.parquet").write_bytes(b"PAR1" + ROW)
    files = _tree(tmp_path / "adapter")
    old = BlobStore(str(tmp_path / "store"))
    blob, snap, tree = old.put_bytes(ROW), old.put_file(tmp_path / "snap.parquet"), old.put_tree(files)
    keyed = BlobStore(str(tmp_path / "store"), keys_of(KEY))
    assert keyed.get_bytes(blob) == ROW
    assert keyed.fetch_file(snap, tmp_path / "out").read_bytes() == b"PAR1" + ROW
    assert (keyed.fetch_tree(tree, tmp_path / "t1") / "adapter_config.json").read_bytes() == Path(files[0][1]).read_bytes()
    # Tampering with old plaintext is still caught by its digest.
    Path(blob.uri).write_bytes(ROW[:-1] + b"!")
    with pytest.raises(IntegrityError, match=blob.digest):
        keyed.get_bytes(blob)
    assert [keyed.put_bytes(ROW), keyed.put_file(tmp_path / "snap.parquet"), keyed.put_tree(files)] == [blob, snap, tree]
    assert all(p.read_bytes().startswith(MAGIC) for p in _stored_files(tmp_path / "store"))
    assert keyed.get_bytes(blob) == ROW
    assert (keyed.fetch_tree(tree, tmp_path / "t2") / "adapter_model.safetensors").read_bytes() == Path(files[1][1]).read_bytes()


@pytest.mark.parametrize("offset", [0, 9, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 5, -1])
def test_a_changed_byte_anywhere_fails_authentication(tmp_path: Path, offset: int) -> None:
    store = BlobStore(str(tmp_path), keys_of(KEY))
    ref = store.put_bytes(ROW * 10)
    data = bytearray(Path(ref.uri).read_bytes())
    data[offset] ^= 0x01
    Path(ref.uri).write_bytes(bytes(data))
    # A flipped magic byte leaves plaintext that fails its digest; a flipped key id names an unknown key.
    expected = ConfigError if 8 <= offset % len(data) < 16 else IntegrityError
    with pytest.raises(expected, match=ref.digest):
        store.get_bytes(ref)
    with pytest.raises(expected):
        store.fetch_file(ref, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_reordered_and_extended_files_are_refused(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "store"), keys_of(KEY))
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * SEGMENT))
    ref = store.put_file(src)
    sealed = Path(ref.uri).read_bytes()
    seg = SEGMENT + TAG_BYTES
    header, parts = sealed[:HEADER_BYTES], [sealed[HEADER_BYTES + i * seg:HEADER_BYTES + (i + 1) * seg] for i in range(3)]
    variants = {
        "cut at a segment boundary": header + parts[0] + parts[1],
        "cut mid-segment": sealed[:-100],
        "segments reordered": header + parts[1] + parts[0] + parts[2],
        "a segment appended": sealed + parts[2],
    }
    for what, data in variants.items():
        Path(ref.uri).write_bytes(data)
        with pytest.raises(IntegrityError, match=ref.digest):
            store.fetch_file(ev.ArtifactRef(digest=ref.digest, uri=ref.uri), tmp_path / "out")
        assert not (tmp_path / "out").exists(), what


def test_one_objects_sealed_bytes_in_anothers_place_fail(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "store"), keys_of(KEY))
    a, b = store.put_bytes(b"champion weights"), store.put_bytes(b"failed candidate weights")
    Path(a.uri).write_bytes(Path(b.uri).read_bytes())
    with pytest.raises(IntegrityError, match="swapped"):
        store.get_bytes(a)
    tree = store.put_tree(_tree(tmp_path / "adapter"))
    folder = Path(tree.uri)
    config, model = (folder / "adapter_config.json").read_bytes(), (folder / "adapter_model.safetensors").read_bytes()
    (folder / "adapter_config.json").write_bytes(model)
    (folder / "adapter_model.safetensors").write_bytes(config)
    with pytest.raises(IntegrityError, match="swapped"):
        store.fetch_tree(tree, tmp_path / "out")


def test_a_sealed_blob_longer_than_declared_is_refused(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path), keys_of(KEY))
    ref = store.put_bytes(b"x" * 10_000)
    short = ev.ArtifactRef(digest=ref.digest, uri=ref.uri, size_bytes=100)
    with pytest.raises(IntegrityError, match="longer than its declared 100 bytes"):
        store.get_bytes(short)
    with pytest.raises(IntegrityError, match="longer than its declared 100 bytes"):
        store.fetch_file(short, tmp_path / "out")


def test_rotation_keeps_old_objects_readable_until_resealed(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "at-rest.key"
    first = init_key_file(key_file)
    settings = Settings(state_dir=tmp_path / "state", at_rest_key_file=key_file)
    old = BlobStore.from_settings(settings)
    files = _tree(tmp_path / "adapter")
    blob, tree = old.put_bytes(ROW), old.put_tree(files)
    plain = BlobStore(str(tmp_path / "state" / "artifacts")).put_bytes(b"written before any key")
    second = init_key_file(key_file, rotate=True)
    rotated = BlobStore.from_settings(settings)
    assert rotated.get_bytes(blob) == ROW and first != second
    done = rotated.reseal()
    assert (done.blobs, done.trees, done.current) == (2, 1, 0)
    assert all(p.read_bytes()[8:16].hex() == second for p in _stored_files(tmp_path / "state" / "artifacts"))
    key_file.write_text(key_file.read_text().splitlines()[0] + "\n")  # the old key retired
    newest = BlobStore.from_settings(settings)
    assert newest.get_bytes(blob) == ROW and newest.get_bytes(plain) == b"written before any key"
    assert (newest.fetch_tree(tree, tmp_path / "out") / "adapter_config.json").read_bytes() == Path(files[0][1]).read_bytes()
    assert newest.reseal().current == 3


def test_key_files_are_made_once_and_bad_ones_name_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys" / "at-rest.key"
    made = init_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600 and load_keys(path).current.name == made
    assert "readable by its group or others" not in caplog.text
    with pytest.raises(ConfigError, match="already exists"):
        init_key_file(path)
    (tmp_path / "raw.key").write_bytes(KEY)
    (tmp_path / "raw.key").chmod(0o644)
    assert load_keys(tmp_path / "raw.key").current.id == key_id(KEY)
    (tmp_path / "b64.key").write_text(base64.b64encode(KEY).decode() + "\n")
    assert load_keys(tmp_path / "b64.key").current.id == key_id(KEY)
    assert "readable by its group or others" in caplog.text
    (tmp_path / "short.key").write_text(base64.b64encode(KEY[:16]).decode())
    for bad, message in ((tmp_path / "missing.key", "does not exist"), (tmp_path / "short.key", "not a base64 32-byte key"),
                         (tmp_path, "cannot read")):
        with pytest.raises(ConfigError, match=message) as err:
            load_keys(bad)
        assert str(bad) in str(err.value)


def test_the_init_command_writes_a_private_key_once_and_prints_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from services.kernel.commands import keys_app

    monkeypatch.delenv("TUNELINE_AT_REST_KEY_FILE", raising=False)
    runner, state = CliRunner(), str(tmp_path / "state")
    made = runner.invoke(keys_app, ["at-rest-init", "--state-dir", state])
    path = tmp_path / "state" / "keys" / "at-rest.key"
    assert made.exit_code == 0 and f"TUNELINE_AT_REST_KEY_FILE={path}\n" in made.output
    assert path.stat().st_mode & 0o777 == 0o600 and load_keys(path).current.name in made.output
    again = runner.invoke(keys_app, ["at-rest-init", "--state-dir", state])
    assert isinstance(again.exception, ConfigError) and "already exists" in str(again.exception)
    assert load_keys(path).current.name in made.output, "the first key is kept"
