"""Lock files as the CI checks read them: one `name==version` pin a line."""

from __future__ import annotations

import re
from pathlib import Path


def normalized(name: str) -> str:
    """A package name as PEP 503 compares them (and as package URLs spell PyPI names)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> list[tuple[str, str]]:
    """The (name, version) pins of a lock file, in order; a line that pins no single version is an error."""
    found = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"{lock}: {line!r} does not pin one version (name==version)")
            found.append((name.split("[", 1)[0].strip(), version.split(";", 1)[0].strip()))
    return found
