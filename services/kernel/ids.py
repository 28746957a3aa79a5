"""Identities: UUIDv7 for runs, events and deployments; sha256 digests for content."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def uuid7() -> str:
    """A time-ordered UUIDv7 (RFC 9562): 48-bit unix ms, a 12-bit counter, 62 random bits."""
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same millisecond (or a clock step back): keep ids monotonic with the counter.
            ms = _last_ms
            _seq = (_seq + 1) & 0xFFF
            if _seq == 0:
                ms += 1
        else:
            _seq = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (_seq << 64) | (0b10 << 62) | rand
    return str(uuid.UUID(int=value))


def sha256_bytes(data: bytes) -> str:
    """The `sha256:<hex>` digest of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The `sha256:<hex>` digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys, no spaces, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest_json(value: Any) -> str:
    """The digest of a value's canonical JSON (goal versions, envelopes)."""
    return sha256_bytes(canonical_json(value))


def digest_files(files: Iterable[tuple[str, str | Path]]) -> str:
    """One digest over named files in the given order: name, length and bytes of each.

    Adapters are identified this way, so renaming or reordering files changes the digest.
    """
    h = hashlib.sha256()
    for name, path in files:
        size = os.path.getsize(path)
        h.update(name.encode() + b"\0" + str(size).encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return "sha256:" + h.hexdigest()


def is_digest(value: str) -> bool:
    """Whether a string is a well-formed `sha256:<64 hex>` digest."""
    return bool(DIGEST_RE.match(value))


def short(digest: str, n: int = 12) -> str:
    """A digest shortened for display: `sha256:` dropped, first n hex digits."""
    return digest.removeprefix("sha256:")[:n]
