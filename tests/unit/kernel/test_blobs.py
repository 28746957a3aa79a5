"""Content-addressed artifacts: tampering is refused, writes never leave partial objects (R19, R20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kernel.blobs import BlobStore
from services.kernel.errors import IntegrityError


def test_flipped_byte_is_refused_naming_the_digest(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    ref = store.put_bytes(b"adapter weights" * 100)
    path = Path(ref.uri)
    data = bytearray(path.read_bytes())
    data[17] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=ref.digest):
        store.get_bytes(ref)
    with pytest.raises(IntegrityError):
        store.fetch_file(ref, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists(), "a file that failed verification must not appear"


def test_truncated_and_swapped_tree_files_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "adapter_config.json").write_text('{"r": 8}')
    (src / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    store = BlobStore(str(tmp_path / "store"))
    ref = store.put_tree([("adapter_config.json", src / "adapter_config.json"),
                          ("adapter_model.safetensors", src / "adapter_model.safetensors")])
    assert (store.fetch_tree(ref, tmp_path / "ok") / "adapter_config.json").read_text() == '{"r": 8}'
    stored = Path(ref.uri)
    (stored / "adapter_model.safetensors").write_bytes(b"\x00" * 63)
    with pytest.raises(IntegrityError, match=ref.digest):
        store.fetch_tree(ref, tmp_path / "bad1")
    (stored / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    (stored / ".complete").write_text("adapter_model.safetensors\nadapter_config.json")
    with pytest.raises(IntegrityError):
        store.fetch_tree(ref, tmp_path / "bad2")


def test_a_failed_write_leaves_nothing_under_the_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(str(tmp_path))

    def disk_full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.put_bytes(b"x" * 1000)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "no partial object may remain"


def test_same_bytes_same_digest_and_one_object(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    a, b = store.put_bytes(b"snapshot"), store.put_bytes(b"snapshot")
    assert a.digest == b.digest and a.uri == b.uri
    assert store.get_bytes(a) == b"snapshot"
