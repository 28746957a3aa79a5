"""Artifact signatures: the trainer's model-signing signature over an adapter's files, and every way it is refused."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.kernel.artifact_signing import ArtifactVerifier, artifact_key_id, sign_adapter, verify_adapter_signature
from services.kernel.errors import ConfigError, IntegrityError
from services.kernel.modeling import ADAPTER_FILES_LORA, adapter_digest
from services.kernel.settings import Settings
from services.kernel.signing import ARTIFACT_KEY, Unauthenticated, init_keys, keys_dir


def _adapter(folder: Path, tag: str = "a") -> Path:
    """A folder with a LoRA adapter's four files (the bytes are not a model: only the files matter here)."""
    folder.mkdir(parents=True)
    for name in ADAPTER_FILES_LORA:
        (folder / name).write_bytes(f"{name} of adapter {tag}\n".encode() * 8)
    return folder


def _refused(settings: Settings, folder: Path, bundle: bytes, digest: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        verify_adapter_signature(settings, folder, bundle, digest)
    return str(refused.value)


def test_keys_init_makes_the_trainers_p256_artifact_key_once(offline_settings: Settings) -> None:
    assert ARTIFACT_KEY in init_keys(offline_settings) and init_keys(offline_settings) == []
    private = keys_dir(offline_settings) / "trainer-artifacts.key"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert (keys_dir(offline_settings) / "trainer-artifacts.pub").exists()
    assert len(artifact_key_id(offline_settings)) == 16


def test_a_signature_verifies_over_the_same_files_anywhere_and_leaves_the_adapter_as_it_was(
        offline_settings: Settings, tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "run" / "adapter")
    digest = adapter_digest(folder)
    bundle = sign_adapter(offline_settings, folder)  # the key is made at first use in the embedded mode
    assert sorted(p.name for p in folder.iterdir()) == sorted(ADAPTER_FILES_LORA) and adapter_digest(folder) == digest
    doc = json.loads(bundle)
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    assert sorted(r["name"] for r in statement["predicate"]["resources"]) == sorted(ADAPTER_FILES_LORA)
    verify_adapter_signature(offline_settings, folder, bundle, digest)
    fetched = shutil.copytree(folder, tmp_path / "deployer" / digest.removeprefix("sha256:"))  # as fetch_tree puts it
    verify_adapter_signature(offline_settings, fetched, bundle, digest)


@pytest.mark.parametrize("change", ["tampered file", "added file", "added .gitignore", "removed file"])
def test_changed_files_are_refused_with_what_changed(offline_settings: Settings, tmp_path: Path, change: str) -> None:
    folder = _adapter(tmp_path / "adapter")
    digest, bundle = adapter_digest(folder), sign_adapter(offline_settings, folder)
    weights = folder / "adapter_model.safetensors"
    if change == "tampered file":
        weights.write_bytes(weights.read_bytes().replace(b"a", b"b"))   # same length
        expected = "(changed: adapter_model.safetensors)"
    elif change == "added file":
        (folder / "extra.bin").write_bytes(b"pickle")
        expected = "(added: extra.bin)"
    elif change == "added .gitignore":                                    # model-signing skips .git* by default; not here
        (folder / ".gitignore").write_text("*\n")
        expected = "(added: .gitignore)"
    else:
        weights.unlink()
        expected = "(removed: adapter_model.safetensors)"
    reason = _refused(offline_settings, folder, bundle, digest)
    assert "does not verify over its files" in reason and expected in reason and digest in reason


def test_a_signature_over_another_adapter_is_refused(offline_settings: Settings, tmp_path: Path) -> None:
    a, b = _adapter(tmp_path / "a", "a"), _adapter(tmp_path / "b", "b")
    bundle_a = sign_adapter(offline_settings, a)
    changed = ", ".join(sorted(ADAPTER_FILES_LORA))
    assert f"(changed: {changed})" in _refused(offline_settings, b, bundle_a, adapter_digest(b))
    # The signature and the files agree, but they are not the adapter the event names.
    assert "covers other files" in _refused(offline_settings, a, bundle_a, adapter_digest(b))


def test_a_signature_by_another_key_is_refused(offline_settings: Settings, tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "adapter")
    stranger = offline_settings.replace(keys_dir=tmp_path / "stranger-keys")
    reason = _refused(offline_settings, folder, sign_adapter(stranger, folder), adapter_digest(folder))
    assert "not one of the trainer's trusted artifact keys" in reason and artifact_key_id(offline_settings) in reason


def test_a_forged_bundle_naming_the_trusted_key_is_refused(offline_settings: Settings, tmp_path: Path) -> None:
    """A stranger's signature relabelled with the trainer's key hint: the signature itself fails."""
    folder = _adapter(tmp_path / "adapter")
    real = json.loads(sign_adapter(offline_settings, folder))
    stranger = offline_settings.replace(keys_dir=tmp_path / "stranger-keys")
    forged = json.loads(sign_adapter(stranger, folder))
    forged["verificationMaterial"] = real["verificationMaterial"]
    reason = _refused(offline_settings, folder, json.dumps(forged).encode(), adapter_digest(folder))
    assert "does not verify" in reason and "InvalidSignature" in reason


@pytest.mark.parametrize(("bundle", "expected"), [
    (b"", "carries no artifact signature"),
    (b"  \n", "carries no artifact signature"),
    (b"not json at all \xff", "not a model-signing Sigstore bundle"),
    (b"[1, 2]", "not a model-signing Sigstore bundle"),
    (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}', "not a model-signing Sigstore bundle"),
    (b'{"verificationMaterial": {"publicKey": {"hint": ""}}}', "names no signing key"),
])
def test_a_missing_or_garbage_bundle_is_refused(offline_settings: Settings, tmp_path: Path, bundle: bytes, expected: str) -> None:
    folder = _adapter(tmp_path / "adapter")
    init_keys(offline_settings)
    reason = _refused(offline_settings, folder, bundle, adapter_digest(folder))
    assert expected in reason


def test_a_truncated_bundle_with_the_trusted_key_is_refused(offline_settings: Settings, tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "adapter")
    doc = json.loads(sign_adapter(offline_settings, folder))
    del doc["dsseEnvelope"]
    assert "does not verify" in _refused(offline_settings, folder, json.dumps(doc).encode(), adapter_digest(folder))


def test_a_rotated_key_stays_trusted_under_a_label_until_removed(offline_settings: Settings, tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "adapter")
    digest, old = adapter_digest(folder), sign_adapter(offline_settings, folder)
    keys = keys_dir(offline_settings)
    (keys / "trainer-artifacts.pub").rename(keys / "trainer-artifacts.2026-12.pub")
    (keys / "trainer-artifacts.key").unlink()
    init_keys(offline_settings, (ARTIFACT_KEY,))
    new = sign_adapter(offline_settings, folder)
    for bundle in (old, new):
        verify_adapter_signature(offline_settings, folder, bundle, digest)
    (keys / "trainer-artifacts.2026-12.pub").unlink()
    assert "not one of the trainer's trusted artifact keys" in _refused(offline_settings, folder, old, digest)
    verify_adapter_signature(offline_settings, folder, new, digest)


def test_a_deployment_without_mounted_keys_fails_closed(offline_settings: Settings, tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "adapter")
    bundle = sign_adapter(offline_settings.replace(keys_dir=tmp_path / "trainer-keys"), folder)
    deployed = offline_settings.replace(keys_dir=tmp_path / "mounted", signing_keys_auto=False)
    with pytest.raises(ConfigError, match="no signing key for trainer-artifacts"):
        sign_adapter(deployed, folder)
    with pytest.raises(ConfigError, match="no trusted public key for trainer-artifacts"):
        ArtifactVerifier(deployed).verify(folder, bundle, adapter_digest(folder))


def test_a_folder_with_files_outside_the_adapter_is_not_signed(offline_settings: Settings, tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "adapter")
    (folder / "notes.txt").write_text("scratch")
    with pytest.raises(IntegrityError, match="notes.txt"):
        sign_adapter(offline_settings, folder)


def test_an_ed25519_key_in_the_artifact_keys_place_is_a_config_error(offline_settings: Settings, tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "adapter")
    init_keys(offline_settings)
    keys = keys_dir(offline_settings)
    for suffix in ("key", "pub"):
        shutil.copy(keys / f"trainer.{suffix}", keys / f"trainer-artifacts.{suffix}")
    with pytest.raises(ConfigError, match="not an EC P-256 private key"):
        sign_adapter(offline_settings, folder)
    with pytest.raises(ConfigError, match="not an EC public key"):
        ArtifactVerifier(offline_settings).verify(folder, b'{"verificationMaterial": {"publicKey": {"hint": "x"}}}',
                                                  adapter_digest(folder))
