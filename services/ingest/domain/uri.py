"""Where a dataset may be read from: local paths confined to allowed roots, or allowed fsspec URLs.

Checks, in order: no NUL or control characters; a known scheme; percent-escapes decoded (a `%2e%2e`
is a `..`); no `..` component at all (even one that would stay inside, so that the rule is simple
to state); then the path is resolved with symlinks followed and must lie inside a resolved root and
be a regular file. Denied roots (the state folder: stores, artifacts, keys) carve holes in the allowed
ones: the most specific root that holds the path decides, so `state/inbox` may be allowed inside a
denied `state` folder that itself lies inside an allowed working directory. Every refusal is an
InvalidInput that says what to change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.kernel.errors import InvalidInput, NotFound

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DatasetLocation:
    """A checked location: a resolved local file, or an fsspec URL of an allowed protocol."""

    uri: str
    local_path: Path | None = None

    @property
    def is_local(self) -> bool:
        """Whether this is a local file."""
        return self.local_path is not None


def _decoded(text: str) -> str:
    # Decode repeatedly so that a double-encoded %252e%252e cannot hide a `..`.
    for _ in range(4):
        once = unquote(text)
        if once == text:
            return text
        text = once
    raise InvalidInput("the URI is percent-encoded too many times", hint="publish a plain path or URL")


def _no_traversal(path: str, uri: str) -> None:
    parts = re.split(r"[\\/]+", path)
    if ".." in parts:
        raise InvalidInput(
            f"dataset URI {uri!r} contains a '..' path component (after decoding %-escapes)",
            hint="publish the dataset's real path, without '..'",
        )


def _check_text(uri: str) -> None:
    if not uri or not uri.strip():
        raise InvalidInput("the dataset URI is empty", hint="set uri to the dataset's path or URL")
    if _CONTROL.search(uri) or _CONTROL.search(_decoded(uri)):
        raise InvalidInput("the dataset URI contains control characters or NUL", hint="publish a plain path")


def check_uri(uri: str, roots: Sequence[Path], schemes: Sequence[str], denied: Sequence[Path] = ()) -> DatasetLocation:
    """Accept a dataset URI or refuse it with a reason (InvalidInput) or NotFound."""
    _check_text(uri)
    m = _SCHEME.match(uri)
    scheme = m.group(1).lower() if m else ""
    if scheme in ("", "file"):
        return DatasetLocation(uri, check_local(uri, roots, denied))
    if scheme not in {s.lower() for s in schemes}:
        allowed = ", ".join(sorted(schemes)) or "none"
        raise InvalidInput(
            f"URI scheme {scheme!r} is not allowed for datasets (allowed besides local files: {allowed})",
            hint="publish a local path under an allowed root, or ask to add the scheme to allowed_url_schemes",
        )
    _no_traversal(_decoded(urlsplit(uri).path), uri)
    return DatasetLocation(uri)


def _local_path(uri: str) -> str:
    if uri.lower().startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"file URI {uri!r} names a remote host", hint="use file:///absolute/path")
        return _decoded(parts.path)
    # A plain path: escapes are not special for the file system, but a decoded `..` is still refused.
    _no_traversal(_decoded(uri), uri)
    return uri


def check_local(uri: str, roots: Sequence[Path], denied: Sequence[Path] = ()) -> Path:
    """The resolved file a local URI names, if it lies inside an allowed root and not in a denied one."""
    path = _local_path(uri)
    _no_traversal(path, uri)
    real = Path(os.path.realpath(Path(path).expanduser()))
    real_roots = [Path(os.path.realpath(r)) for r in roots]
    holding = [(len(r.parts), True, r) for r in real_roots if real.is_relative_to(r)]
    holding += [(len(d.parts), False, d) for d in map(Path, map(os.path.realpath, denied)) if real.is_relative_to(d)]
    if not any(allowed for _, allowed, _ in holding):
        raise InvalidInput(
            f"dataset path {uri!r} resolves to {str(real)!r}, outside the allowed data roots",
            hint="copy it under one of: " + ", ".join(str(r) for r in real_roots),
        )
    # The deepest root decides; at equal depth the denied one wins.
    _, allowed, deciding = max(holding, key=lambda h: (h[0], not h[1]))
    if not allowed:
        raise InvalidInput(
            f"dataset path {uri!r} resolves to {str(real)!r}, inside {str(deciding)!r}, which datasets may not be read from "
            "(Tuneline's own state: stores, artifacts, keys)",
            hint="publish a copy from outside the state folder, or put it in one of: " + ", ".join(str(r) for r in real_roots),
        )
    if not real.exists():
        raise NotFound(f"dataset file {uri!r} does not exist", hint="check the path and publish again")
    if not real.is_file():
        raise InvalidInput(f"dataset path {uri!r} is not a regular file", hint="publish a CSV, JSONL or Parquet file")
    return real
