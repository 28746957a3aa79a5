"""Encryption at rest: a wrong key or a missing key is a clear error, never garbage; key files are made once.

Sealed round trips, altered bytes, rotation and reseal run on every backend (a local folder and an S3 API
server): tests/integration/kernel/test_blobs_s3.py."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from services.kernel.blobs import BlobStore
from services.kernel.errors import ConfigError
from services.kernel.sealing import init_key_file, key_id, keys_of, load_keys
from tests.support import adapter_tree

KEY, OTHER = bytes(range(32)), bytes(range(1, 33))
ROW = b"zebra-quartz-7781 transfer my savings"


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
    ref, tree = keyed.put_bytes(ROW), keyed.put_tree(adapter_tree(tmp_path / "adapter", ROW))
    unkeyed = BlobStore(str(tmp_path))
    for read in (lambda: unkeyed.get_bytes(ref), lambda: unkeyed.fetch_file(ref, tmp_path / "out"),
                 lambda: unkeyed.fetch_tree(tree, tmp_path / "tree-out")):
        with pytest.raises(ConfigError, match=f"sealed \\(at-rest key {key_id(KEY).hex()}\\), but no at-rest key is configured"):
            read()


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
