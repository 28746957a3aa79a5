"""Signed events: who may decide what, checked by every consumer before it acts.

Kafka carries decisions, so a decision counts only when whoever may make it signed it: the evaluator
its verdicts, the trainer its runs, the monitor or an operator a rollback, an operator a goal
(`SIGNED_BY`). Each identity has an Ed25519 key pair (`cryptography`); the private key stays with the
identity, every consumer holds the public keys.

What is signed is the event's statement: its ce_id, ce_type, ce_source, ce_subject, ce_time and the
sha256 of the payload bytes, as canonical JSON. Two headers carry the result: `tuneline-signer`
(`<identity>:<key id>`) and `tuneline-signature` (base64). So a changed payload, a changed subject
(another goal), a new ce_id on old bytes, or a signer that may not make the decision all fail; the
same record replayed as it was is the same ce_id, which the consumer's inbox already ignores.

Keys live in `keys_dir` (default state_dir/keys): `<identity>.key` (PKCS#8 PEM, mode 0600) and
`<identity>.pub`. The embedded mode makes any missing pair at first use (`tuneline keys init` does it
explicitly); a deployment mounts them from secrets and sets `signing_keys_auto=false`. The same folder
holds the trainer's artifact key, `trainer-artifacts.key`/`.pub` (EC P-256, made the same way), with
which `services.kernel.artifact_signing` signs the adapters themselves.

Why not OpenSSF model-signing here: it signs files (a model's folder) into a Sigstore bundle, which is
the right tool for artifacts; an event is a few hundred bytes checked thousands of times a second, for
which a detached Ed25519 signature over a fixed statement is the standard, smaller answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from services.kernel.errors import ConfigError, PermanentError
from services.kernel.events import Record
from services.kernel.ids import canonical_json
from services.kernel.settings import Settings

SIGNER_HEADER = "tuneline-signer"
SIGNATURE_HEADER = "tuneline-signature"
IDENTITIES = ("ingest", "trainer", "evaluator", "deployer", "monitor", "operator")
# The trainer's artifact key: model-signing signs with elliptic-curve keys only (no Ed25519).
ARTIFACT_KEY = "trainer-artifacts"
# The ingest's pseudonym key: 32 random bytes (hex) keying the HMAC-SHA256 that replaces the values a
# goal asks to hash (`data.slice_values: hash`). It stays with the ingest beside its private key.
PSEUDONYM_KEY = "ingest.pseudonym"

# The decisions, and who may make each. A consumer refuses any of these that does not verify.
SIGNED_BY: dict[str, frozenset[str]] = {
    "goal.applied": frozenset({"operator"}),
    "run.finished": frozenset({"trainer"}),
    "eval.passed": frozenset({"evaluator"}),
    "eval.failed": frozenset({"evaluator"}),
    "rollback.requested": frozenset({"monitor", "operator"}),
    "retention.applied": frozenset({"monitor"}),
    # A person's approval, carried out (and announced) by the deployer that checked their credential.
    "deployment.approved": frozenset({"deployer"}),
    "deployment.rejected": frozenset({"deployer"}),
    "deployment.held": frozenset({"deployer"}),
    "deployment.resumed": frozenset({"deployer"}),
}


class Unauthenticated(PermanentError):
    """A decision that is unsigned, forged, altered, or signed by someone who may not make it."""


def keys_dir(settings: Settings) -> Path:
    """Where the key pairs live."""
    return settings.keys_dir or settings.state_dir / "keys"


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of the sha256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def init_keys(settings: Settings, identities: tuple[str, ...] = (*IDENTITIES, ARTIFACT_KEY)) -> list[str]:
    """Make every missing key pair (never replacing one); returns the identities made now."""
    made = []
    folder = keys_dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for identity in identities:
        private = folder / f"{identity}.key"
        if not private.exists():
            pem = _new_key(identity).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            if _create_once(private, pem, 0o600):
                made.append(identity)
        public = folder / f"{identity}.pub"
        if not public.exists():
            # Derived from whichever private key won a race to be created: every writer writes the same bytes.
            pub = read_private_key(private).public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            _create_once(public, pub, 0o644)
    if "ingest" in identities and _create_once_missing(folder / PSEUDONYM_KEY, os.urandom(32).hex().encode() + b"\n", 0o600):
        made.append(PSEUDONYM_KEY)
    return made


def _create_once_missing(path: Path, data: bytes, mode: int) -> bool:
    return not path.exists() and _create_once(path, data, mode)


def pseudonym_key(settings: Settings) -> bytes:
    """The ingest's pseudonym key (made at first use in the embedded mode); ConfigError when absent or malformed."""
    path = keys_dir(settings) / PSEUDONYM_KEY
    if not path.exists() and settings.signing_keys_auto:
        init_keys(settings, ("ingest",))
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise ConfigError(f"no pseudonym key for the ingest at {path}",
                          hint="mount it there (tuneline keys init makes one) or set TUNELINE_KEYS_DIR") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"cannot read the pseudonym key {path}: {err}", hint="it holds 64 hex digits; run `tuneline keys init`") from None
    if len(key) < 32:
        raise ConfigError(f"the pseudonym key {path} is {len(key)} bytes; it must be at least 32",
                          hint="replace it with 64 random hex digits (tuneline keys init makes one)")
    return key


def _new_key(identity: str) -> PrivateKeyTypes:
    return ec.generate_private_key(ec.SECP256R1()) if identity == ARTIFACT_KEY else Ed25519PrivateKey.generate()


def key_file(settings: Settings, name: str, suffix: str) -> Path:
    """`<name>.<suffix>` in the keys folder (every missing pair made first in the embedded mode); ConfigError when absent."""
    path = keys_dir(settings) / f"{name}.{suffix}"
    if not path.exists() and settings.signing_keys_auto:
        init_keys(settings)
    if not path.exists():
        what = "signing key" if suffix == "key" else "trusted public key"
        raise ConfigError(f"no {what} for {name} at {path}",
                          hint="mount the key there, set TUNELINE_KEYS_DIR, or run `tuneline keys init`")
    return path


def trusted_files(settings: Settings, name: str) -> list[Path]:
    """The public keys trusted for `name`: `<name>.pub` and any rotated-out `<name>.<label>.pub` beside it."""
    current = key_file(settings, name, "pub")
    return [current, *sorted(current.parent.glob(f"{name}.*.pub"))]


def _create_once(path: Path, data: bytes, mode: int) -> bool:
    """Write a file only if it does not exist yet (atomic: a hard link fails if another writer got there)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def read_private_key(path: Path) -> PrivateKeyTypes:
    """A PEM private key (unencrypted PKCS#8); ConfigError when unreadable."""
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"cannot read the signing key {path}: {err}", hint="run `tuneline keys init`") from None


def read_public_key(path: Path) -> PublicKeyTypes:
    """A PEM public key; ConfigError when unreadable."""
    try:
        return serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the public key {path}: {err}", hint="run `tuneline keys init`") from None


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = read_private_key(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key", hint="run `tuneline keys init` with a fresh keys folder")
    return key


def _load_public(path: Path) -> Ed25519PublicKey:
    key = read_public_key(path)
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


def public_key(settings: Settings, identity: str) -> Ed25519PublicKey | None:
    """An identity's trusted public key, or None when the keys folder has none."""
    path = keys_dir(settings) / f"{identity}.pub"
    return _load_public(path) if path.exists() else None


def statement(headers: dict[str, str], value: bytes) -> bytes:
    """The bytes a signature covers: the CloudEvents attributes that identify the event, and the payload's hash."""
    fields = {k: headers.get(k, "") for k in ("ce_id", "ce_type", "ce_source", "ce_subject", "ce_time")}
    return canonical_json({**fields, "payload_sha256": hashlib.sha256(value).hexdigest()})


@dataclass(frozen=True)
class Signer:
    """An identity's private key: signs the records it produces."""

    identity: str
    key: Ed25519PrivateKey

    @classmethod
    def load(cls, settings: Settings, identity: str) -> Signer | None:
        """The identity's signer (made first in the embedded mode); None for one Tuneline has no key for."""
        if identity not in IDENTITIES:
            return None
        return cls(identity, _load_private(key_file(settings, identity, "key")))

    def headers(self, headers: list[tuple[str, bytes]], value: bytes) -> list[tuple[str, bytes]]:
        """The record's headers with this identity's signature (any earlier signature replaced)."""
        kept = [(k, v) for k, v in headers if k not in (SIGNER_HEADER, SIGNATURE_HEADER)]
        text = {k: v.decode() for k, v in kept if k.startswith("ce_")}
        signature = self.key.sign(statement(text, value))
        signer = f"{self.identity}:{key_id(self.key.public_key())}"
        return [*kept, (SIGNER_HEADER, signer.encode()), (SIGNATURE_HEADER, base64.b64encode(signature))]

    def sign(self, record: Record) -> Record:
        """The record with this identity's signature headers."""
        return Record(record.topic, record.key, record.value, self.headers(record.headers, record.value))


class Verifier:
    """The trusted public keys; checks that a decision was signed by someone who may make it.

    An identity's trusted keys are `<identity>.pub` and any `<identity>.<label>.pub` beside it: a key
    being rotated out stays trusted under a label until the events it signed are consumed.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys: dict[str, dict[str, Ed25519PublicKey]] = {}

    def trusted(self, identity: str) -> dict[str, Ed25519PublicKey]:
        """An identity's trusted keys by key id (read once; a missing current key is a ConfigError)."""
        if identity not in self._keys:
            keys = [_load_public(p) for p in trusted_files(self._settings, identity)]
            self._keys[identity] = {key_id(k): k for k in keys}
        return self._keys[identity]

    def signer_of(self, event: str, headers: list[tuple[str, bytes]], value: bytes) -> str:
        """The identity that signed this decision; Unauthenticated when it may not, or did not."""
        allowed = SIGNED_BY.get(event)
        if allowed is None:
            return ""
        signers = [v for k, v in headers if k == SIGNER_HEADER]
        signatures = [v for k, v in headers if k == SIGNATURE_HEADER]
        if not signers or not signatures:
            raise Unauthenticated(f"{event} is not signed; only {', '.join(sorted(allowed))} may make this decision")
        if len(signers) > 1 or len(signatures) > 1:
            raise Unauthenticated(f"{event} carries more than one signature header")
        try:
            identity, _, kid = signers[0].decode().partition(":")
            signature = base64.b64decode(signatures[0], validate=True)
            text = {k: v.decode() for k, v in headers if k.startswith("ce_")}
        except (UnicodeDecodeError, binascii.Error):
            raise Unauthenticated(f"{event}: the signature headers are malformed") from None
        if identity not in allowed:
            raise Unauthenticated(f"{event} signed by {identity!r}, which may not make this decision "
                                  f"(only {', '.join(sorted(allowed))})")
        key = self.trusted(identity).get(kid)
        if key is None:
            raise Unauthenticated(f"{event} signed with key {kid!r}, which is not one of {identity}'s trusted keys "
                                  f"({', '.join(self.trusted(identity))})")
        try:
            key.verify(signature, statement(text, value))
        except InvalidSignature:
            raise Unauthenticated(f"{event}: the signature of {identity} does not match the event "
                                  "(payload, subject, id or time changed after signing)") from None
        return identity
