"""Encryption at rest: artifacts sealed with AES-256-GCM in 1 MiB segments, opened only by a key that sealed them.

A sealed object is a self-describing envelope:

    MAGIC (8: b"TLSEAL1\\0") | key id (8) | base nonce (12) | segment 0 | segment 1 | ... | segment n-1

Each segment is up to SEGMENT bytes of plaintext encrypted and followed by its 16-byte tag; segment i
uses the nonce `base nonce XOR i` and authenticates, as associated data, the header, what the object
is (`aad`: its digest, and for a tree file its name), its index and whether it is the last. So a byte
changed, a segment dropped, reordered or appended, the file cut at a segment boundary, or one
object's sealed bytes put in another's place all fail to authenticate (IntegrityError), and a key
that did not seal an object is named as such (ConfigError) before any decryption is tried.

The key file holds one key as 32 raw bytes, or one or more keys as base64 lines: the first seals,
every key opens what it sealed (so a rotated key keeps opening old objects until they are re-sealed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.kernel.errors import ConfigError, IntegrityError

log = logging.getLogger(__name__)

MAGIC = b"TLSEAL1\0"
KEY_BYTES = 32  # AES-256
KEY_ID_BYTES = 8
NONCE_BYTES = 12  # GCM's 96-bit nonce
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES
# 1 MiB segments: memory stays at about two segments whatever the file's size, and the overhead is
# 16 bytes per MiB (0.0015 %). Nonces are a random 96-bit base per object XOR the segment index, so
# two objects' nonces meet only when their bases agree above the index bits: for a million objects of
# 1 GiB (2^20 objects, 2^10 segments each) about 2^39 pairs x 2^-86 = 2^-47. Rotate the key well before
# 2^32 objects, NIST SP 800-38D's bound for random GCM nonces.
SEGMENT = 1 << 20
_SEALED_SEGMENT = SEGMENT + TAG_BYTES


class Readable(Protocol):
    """What sealed bytes are read from: a local or fsspec file opened "rb"."""

    def read(self, n: int, /) -> bytes: ...


@dataclass(frozen=True)
class SealingKey:
    """One AES-256-GCM key and its id."""

    id: bytes
    aead: AESGCM

    @property
    def name(self) -> str:
        """The key id in hex, for messages."""
        return self.id.hex()


@dataclass(frozen=True)
class SealingKeys:
    """The configured at-rest keys: the first seals, each opens what it sealed."""

    keys: tuple[SealingKey, ...]

    @property
    def current(self) -> SealingKey:
        """The key new objects are sealed with."""
        return self.keys[0]

    @property
    def names(self) -> str:
        """The key ids, for messages."""
        return ", ".join(k.name for k in self.keys)

    def seals(self, head: bytes) -> bool:
        """Whether bytes starting with `head` were sealed with the current key."""
        return is_sealed(head) and head[len(MAGIC):len(MAGIC) + KEY_ID_BYTES] == self.current.id

    def find(self, head: bytes, what: str) -> SealingKey:
        """The key that sealed an object, from its header; ConfigError naming both ids when none of ours did."""
        wanted = head[len(MAGIC):len(MAGIC) + KEY_ID_BYTES]
        for key in self.keys:
            if key.id == wanted:
                return key
        configured = "key is" if len(self.keys) == 1 else "keys are"
        raise ConfigError(f"{what} was sealed with at-rest key {wanted.hex()}, but the configured {configured} {self.names}",
                          hint=f"set TUNELINE_AT_REST_KEY_FILE to the key file that holds key {wanted.hex()} "
                               "(after a rotation, keep the old key on a later line until `tuneline keys at-rest-reseal` ran)")


def key_id(key: bytes) -> bytes:
    """A key's public name: the first 8 bytes of a sha256 over it (domain-separated), never the key itself."""
    return hashlib.sha256(b"tuneline-at-rest-key\0" + key).digest()[:KEY_ID_BYTES]


def keys_of(*raw: bytes) -> SealingKeys:
    """Sealing keys from raw 32-byte keys, the first sealing."""
    if not raw or any(len(k) != KEY_BYTES for k in raw):
        raise ConfigError(f"an at-rest key is {KEY_BYTES} bytes (AES-256-GCM)")
    return SealingKeys(tuple(SealingKey(key_id(k), AESGCM(k)) for k in raw))


def load_keys(path: Path) -> SealingKeys:
    """The keys in an at-rest key file; ConfigError naming the file when it is missing, unreadable or malformed."""
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"the at-rest key file {path} does not exist",
                          hint="make one with `tuneline keys at-rest-init`, or unset TUNELINE_AT_REST_KEY_FILE") from None
    except OSError as err:
        raise ConfigError(f"cannot read the at-rest key file {path}: {err.strerror}",
                          hint="make it readable by this service's user (and only by it: chmod 600)") from None
    if mode & 0o077:
        log.warning("the at-rest key file %s is readable by its group or others (mode %o); chmod 600 it", path, mode & 0o777)
    return keys_of(*_parse_keys(data, path))


def _parse_keys(data: bytes, path: Path) -> list[bytes]:
    # 32 bytes is always a raw key: a base64 line for 32 bytes is 44 characters.
    if len(data) == KEY_BYTES:
        return [data]
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    keys = []
    for n, line in enumerate(lines, 1):
        try:
            key = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigError(f"line {n} of the at-rest key file {path} is not a base64 {KEY_BYTES}-byte key",
                              hint="the file holds 32 raw bytes, or base64 keys one a line (`tuneline keys at-rest-init` writes one)")
        keys.append(key)
    if not keys:
        raise ConfigError(f"the at-rest key file {path} holds no key ({len(data)} bytes; a key is {KEY_BYTES} raw bytes or base64)",
                          hint="make one with `tuneline keys at-rest-init`")
    return keys


def init_key_file(path: Path, rotate: bool = False) -> str:
    """Write a new key file (mode 0600) and return the new key's id; an existing file is refused unless `rotate`.

    With `rotate`, the new key goes in front of the file's keys: it seals from now on, they still open.
    """
    key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
    line = base64.b64encode(key) + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not rotate:
        if not _create_once(path, line):
            raise ConfigError(f"the at-rest key file {path} already exists; it is never replaced (its key opens what it sealed)",
                              hint="`tuneline keys at-rest-init --rotate` puts a new key in front of it")
        return key_id(key).hex()
    if not path.exists():
        raise ConfigError(f"there is no at-rest key file {path} to rotate", hint="run `tuneline keys at-rest-init` first")
    old = b"".join(base64.b64encode(k) + b"\n" for k in _parse_keys(path.read_bytes(), path))
    _replace(path, line + old)
    return key_id(key).hex()


def _create_once(path: Path, data: bytes) -> bool:
    """Write a 0600 file only if it does not exist yet (a hard link fails if another writer got there first)."""
    tmp = _private_temp(path, data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def _replace(path: Path, data: bytes) -> None:
    os.replace(_private_temp(path, data), path)


def _private_temp(path: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


# ------------------------------------------------------------ the envelope
def is_sealed(head: bytes) -> bool:
    """Whether bytes start as a sealed object does."""
    return head.startswith(MAGIC)


def sealed_size(plain_size: int) -> int:
    """The size of a sealed object whose plaintext is `plain_size` bytes: the header and one tag per segment."""
    segments = max(1, -(-plain_size // SEGMENT))
    return HEADER_BYTES + plain_size + TAG_BYTES * segments


def seal_chunks(key: SealingKey, aad: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The sealed envelope of the concatenated chunks, in segments (the plaintext is never held whole)."""
    header = MAGIC + key.id + os.urandom(NONCE_BYTES)
    yield header
    pending, index = bytearray(), 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            # A full segment is sealed only once more bytes follow it: the last one is sealed as the last.
            if len(pending) == SEGMENT:
                yield _seal_segment(key, header, aad, index, bytes(pending), final=False)
                pending, index = bytearray(), index + 1
            take = SEGMENT - len(pending)
            pending += view[:take]
            view = view[take:]
    yield _seal_segment(key, header, aad, index, bytes(pending), final=True)


def seal_file(key: SealingKey, aad: bytes, path: Path) -> Iterator[bytes]:
    """A file's sealed envelope, read a segment at a time."""
    with open(path, "rb") as f:
        yield from seal_chunks(key, aad, iter(lambda: f.read(SEGMENT), b""))


def seal_bytes(key: SealingKey, aad: bytes, data: bytes) -> bytes:
    """The sealed envelope of some bytes."""
    return b"".join(seal_chunks(key, aad, [data]))


def open_stream(keys: SealingKeys, aad: bytes, src: Readable, what: str, limit: int = 0) -> Iterator[bytes]:
    """The plaintext of a sealed object read from `src`, a segment at a time, each authenticated before it is given.

    `limit` > 0 bounds the plaintext: an object longer than that is refused after one segment more.
    """
    header = read_exact(src, HEADER_BYTES)
    if len(header) < HEADER_BYTES or not is_sealed(header):
        raise _tampered(what, "its sealed header is cut short")
    key = keys.find(header, what)
    segment, index, total = read_exact(src, _SEALED_SEGMENT), 0, 0
    while True:
        # Read one segment ahead: the segment followed by nothing must be the one sealed as the last.
        following = read_exact(src, _SEALED_SEGMENT) if len(segment) == _SEALED_SEGMENT else b""
        plain = _open_segment(key, header, aad, index, segment, not following, what)
        total += len(plain)
        if 0 < limit < total:
            raise IntegrityError(f"{what} is longer than its declared {limit} bytes")
        yield plain
        if not following:
            return
        segment, index = following, index + 1


def open_bytes(keys: SealingKeys, aad: bytes, data: bytes, what: str) -> bytes:
    """The plaintext of a sealed object held in memory."""
    return b"".join(open_stream(keys, aad, io.BytesIO(data), what))


def no_key(what: str, head: bytes) -> ConfigError:
    """The error for a sealed object read by a process that has no at-rest key."""
    sealed_with = head[len(MAGIC):len(MAGIC) + KEY_ID_BYTES].hex()
    return ConfigError(f"{what} is sealed (at-rest key {sealed_with}), but no at-rest key is configured",
                       hint="set TUNELINE_AT_REST_KEY_FILE to the key file it was sealed with")


def _associated(header: bytes, aad: bytes, index: int, final: bool) -> bytes:
    return header + len(aad).to_bytes(4, "big") + aad + index.to_bytes(8, "big") + (b"\1" if final else b"\0")


def _nonce(header: bytes, index: int) -> bytes:
    base = int.from_bytes(header[-NONCE_BYTES:], "big")
    return (base ^ index).to_bytes(NONCE_BYTES, "big")


def _seal_segment(key: SealingKey, header: bytes, aad: bytes, index: int, plain: bytes, final: bool) -> bytes:
    return key.aead.encrypt(_nonce(header, index), plain, _associated(header, aad, index, final))


def _open_segment(key: SealingKey, header: bytes, aad: bytes, index: int, sealed: bytes, final: bool, what: str) -> bytes:
    try:
        return key.aead.decrypt(_nonce(header, index), sealed, _associated(header, aad, index, final))
    except InvalidTag:
        raise _tampered(what, f"segment {index} does not authenticate under key {key.name}") from None


def _tampered(what: str, detail: str) -> IntegrityError:
    return IntegrityError(f"{what} was altered, cut short or swapped for another artifact's bytes: {detail}",
                          hint="the stored artifact was altered or corrupted; re-publish it or restore it from a backup")


def read_exact(src: Readable, n: int) -> bytes:
    """Up to n bytes, fewer only at the end (a read may return less than asked before it)."""
    parts, got = [], 0
    while got < n:
        part = src.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)

