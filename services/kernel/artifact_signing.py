"""Artifact signatures: the trainer signs each adapter's files (OpenSSF model-signing); evaluator and deployer verify.

An event signature (`services.kernel.signing`) says who made a decision; it does not say who made the
bytes the decision names. So the trainer also signs the adapter itself: `sign_adapter` runs OpenSSF
model-signing (`model_signing`, key-based: no Sigstore, no transparency log, no network) over the
adapter folder's files and returns its Sigstore bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`:
a DSSE envelope around an in-toto statement that lists every file with its sha256, signed with
ECDSA P-256/SHA-256). The bundle is stored as its own blob and named by `RunFinished.adapter_signature`
(copied into `EvalOutcome.adapter_signature`); the adapter's tree, and so its digest, is unchanged.

`ArtifactVerifier.verify` refuses with `Unauthenticated` (a PermanentError: the evaluator fails the
gate, the deployer dead-letters the approval) an adapter whose signature is missing or not a bundle,
was made with a key that is not one of the trainer's trusted artifact keys, does not verify, or lists
other files than the folder holds (one changed, added or removed), and a folder that is not the
adapter the event names (another digest).

Keys, in `keys_dir` beside the event keys and made the same way (`tuneline keys init`, or at first use
in the embedded mode): `trainer-artifacts.key` (PKCS#8 PEM, mode 0600; the trainer alone needs it) and
`trainer-artifacts.pub` (evaluator and deployer). A key being rotated out stays trusted as
`trainer-artifacts.<label>.pub` while adapters it signed may still be evaluated or deployed.

`model_signing` imports sigstore (about 0.35 s) and `services.kernel.modeling` torch (seconds), so both
are imported on first use: the deployer's consumers and CLI start without them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.errors import ConfigError, IntegrityError, InvalidInput, NotFound
from services.kernel.ids import sha256_file
from services.kernel.settings import Settings
from services.kernel.signing import (
    ARTIFACT_KEY,
    Unauthenticated,
    key_file,
    keys_dir,
    read_private_key,
    read_public_key,
    trusted_files,
)

if TYPE_CHECKING:
    import model_signing.hashing

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_HINT = ("re-train the adapter with a trainer that signs with the trainer-artifacts key; after a rotation, keep the "
         "old public key as trainer-artifacts.<label>.pub until its adapters are retired")


def key_hint(public: ec.EllipticCurvePublicKey) -> str:
    """model-signing's name for a key (a bundle's verificationMaterial.publicKey.hint): the sha256 of its PEM."""
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _hashing() -> model_signing.hashing.Config:
    import model_signing.hashing

    # Every file counts: by default model-signing leaves .git* files out of the manifest.
    config = model_signing.hashing.Config()  # type: ignore[no-untyped-call]  # model-signing leaves its __init__s unannotated
    return config.set_ignored_paths(paths=[], ignore_git_paths=False)


def sign_adapter(settings: Settings, adapter_dir: str | Path) -> bytes:
    """The Sigstore bundle of the trainer's model-signing signature over the adapter folder's files."""
    import model_signing.signing

    from services.kernel.modeling import adapter_files

    folder = Path(adapter_dir)
    names = {name for name, _ in adapter_files(folder)}
    others = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()
                    and str(p.relative_to(folder)) not in names)
    if others:
        raise IntegrityError(f"adapter folder {folder} holds files that are not part of the adapter: {', '.join(others)}",
                             hint="sign a folder that holds exactly the adapter's files")
    path = key_file(settings, ARTIFACT_KEY, "key")
    key = read_private_key(path)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{path} is not an EC P-256 private key", hint="run `tuneline keys init` with a fresh keys folder")
    with tempfile.TemporaryDirectory(prefix="tuneline-sign-") as tmp:
        bundle = Path(tmp) / "adapter.sigstore.json"
        config = model_signing.signing.Config()  # type: ignore[no-untyped-call]  # model-signing leaves its __init__s unannotated
        config.use_elliptic_key_signer(private_key=path).set_hashing_config(_hashing()).sign(folder, bundle)
        return bundle.read_bytes()


def bundle_of(blobs: BlobStore, ref: ev.ArtifactRef, adapter: str) -> bytes:
    """The bundle an event names for an adapter (b"" when it names none); a missing or altered one is Unauthenticated."""
    if not ref.digest:
        return b""
    try:
        return blobs.get_bytes(ref)
    except (NotFound, IntegrityError, InvalidInput) as err:
        raise Unauthenticated(f"adapter {adapter}: its artifact signature {ref.digest} cannot be read: {err}", hint=_HINT) from None


class ArtifactVerifier:
    """The trainer's trusted artifact keys (read at first use); verifies an adapter folder against them."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys: dict[str, Path] | None = None

    def trusted(self) -> dict[str, Path]:
        """The trusted public key files by model-signing key hint (a missing current key is a ConfigError)."""
        if self._keys is None:
            keys = {}
            for path in trusted_files(self._settings, ARTIFACT_KEY):
                key = read_public_key(path)
                if not isinstance(key, ec.EllipticCurvePublicKey):
                    raise ConfigError(f"{path} is not an EC public key", hint="run `tuneline keys init` with a fresh keys folder")
                keys[key_hint(key)] = path
            self._keys = keys
        return self._keys

    def verify(self, adapter_dir: str | Path, bundle: bytes, expected_digest: str) -> None:
        """Refuse (Unauthenticated) unless the trainer's signature verifies over exactly these files of this adapter."""
        import model_signing.verifying

        from services.kernel.modeling import adapter_digest

        what = f"adapter {expected_digest}"
        if not bundle.strip():
            raise Unauthenticated(f"{what} carries no artifact signature: only adapters signed by the trainer "
                                  "(model-signing) are evaluated or served", hint=_HINT)
        hint = _key_hint_of(bundle, what)
        trusted = self.trusted()
        public = trusted.get(hint)
        if public is None:
            raise Unauthenticated(f"{what}: its artifact signature was made with key {hint[:16]}, which is not one of "
                                  f"the trainer's trusted artifact keys ({', '.join(h[:16] for h in trusted)})", hint=_HINT)
        with tempfile.TemporaryDirectory(prefix="tuneline-verify-") as tmp:
            signature = Path(tmp) / "adapter.sigstore.json"
            signature.write_bytes(bundle)
            config = model_signing.verifying.Config()  # type: ignore[no-untyped-call]  # model-signing leaves its __init__s unannotated
            config.use_elliptic_key_verifier(public_key=public).set_hashing_config(_hashing())
            try:
                config.verify(Path(adapter_dir), signature)
            except Exception as err:  # noqa: BLE001 - whatever does not verify is refused (fail closed), with the reason
                # A valid signature over other files: say which (model-signing's own text shows raw digest bytes).
                mismatch = isinstance(err, ValueError) and str(err).startswith("Signature mismatch")
                why = (_differences(bundle, Path(adapter_dir)) if mismatch else "") or f"{type(err).__name__}: {err}".rstrip(": ")
                raise Unauthenticated(f"{what}: the trainer's artifact signature does not verify over its files ({why})",
                                      hint=_HINT) from None
        actual = adapter_digest(adapter_dir)
        if actual != expected_digest:
            raise Unauthenticated(f"{what}: the artifact signature covers other files (adapter {actual})", hint=_HINT)


def _key_hint_of(bundle: bytes, what: str) -> str:
    try:
        hint = json.loads(bundle)["verificationMaterial"]["publicKey"]["hint"]
    except (ValueError, KeyError, TypeError):
        raise Unauthenticated(f"{what}: its artifact signature is not a model-signing Sigstore bundle", hint=_HINT) from None
    if not isinstance(hint, str) or not hint:
        raise Unauthenticated(f"{what}: its artifact signature names no signing key", hint=_HINT)
    return hint


def _differences(bundle: bytes, folder: Path) -> str:
    """The files that differ from those a bundle lists, for the message (model-signing's verdict decides)."""
    try:
        statement = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
        signed = {str(r["name"]): "sha256:" + str(r["digest"]) for r in statement["predicate"]["resources"]}
    except (ValueError, KeyError, TypeError):
        return ""
    present = {str(p.relative_to(folder)): p for p in folder.rglob("*") if not p.is_dir()}
    changed = [n for n in sorted(signed.keys() & present.keys()) if sha256_file(present[n]) != signed[n]]
    found = (("changed", changed), ("added", sorted(present.keys() - signed.keys())),
             ("removed", sorted(signed.keys() - present.keys())))
    return "; ".join(f"{kind}: {', '.join(names)}" for kind, names in found if names)


def verify_adapter_signature(settings: Settings, adapter_dir: str | Path, bundle: bytes, expected_digest: str) -> None:
    """`ArtifactVerifier(settings).verify(...)`: refuse an adapter the trainer did not sign exactly as it is."""
    ArtifactVerifier(settings).verify(adapter_dir, bundle, expected_digest)


def artifact_key_id(settings: Settings) -> str:
    """The first 16 hex digits of the trainer's current artifact key hint ("" when there is no key yet)."""
    path = keys_dir(settings) / f"{ARTIFACT_KEY}.pub"
    if not path.exists():
        return ""
    key = read_public_key(path)
    return key_hint(key)[:16] if isinstance(key, ec.EllipticCurvePublicKey) else ""
