"""Reports people open: a stored HTML report (verified against its digest) copied to a human path.

Blobs are named by digest, without an extension; the copy under `state_dir/reports/NAME.html` opens in
any browser, and `--open` hands it to the desktop's browser (Python's webbrowser module).
"""

from __future__ import annotations

import re
import webbrowser
from pathlib import Path

from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def export_report(settings: Settings, ref: ev.ArtifactRef, name: str, dest: Path | None = None) -> Path:
    """Copy the report `ref` (IntegrityError when its bytes do not match the digest) to `dest`, or to
    state_dir/reports/NAME.html (NAME reduced to letters, digits, `.`, `_` and `-`); the path written."""
    path = dest or settings.path("reports", _UNSAFE.sub("-", name).strip("-.")[:120] + ".html")
    path.write_bytes(BlobStore.from_settings(settings).get_bytes(ref))
    return path


def open_report(path: Path) -> bool:
    """Open the file in the desktop's browser; False where there is none (a server, CI)."""
    return webbrowser.open(path.resolve().as_uri())
