"""CI release check: the wheel is the versioned distribution of this tree, and the SBOM is the lock's.

- The wheel's metadata names the project and version pyproject.toml declares, its `tuneline` command
  is services.cli:main, and it holds every module of services/, benchmarks/ and the generated
  protos/tuneline/ (with the .proto sources and .pyi stubs): nothing the image runs is left out.
- The SBOM is CycloneDX JSON describing that version of tuneline, and lists every package of the
  lock with the locked version and its package URL (pkg:pypi/<name>@<version>), and nothing else.

Usage: python -m scripts.ci.check_release --wheel dist/tuneline-0.1.0-py3-none-any.whl
           --sbom dist/tuneline-0.1.0.cdx.json [--lock requirements.lock]      (exit status 1 on a problem)
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

from scripts.ci.locks import normalized, pins

REPO = Path(__file__).resolve().parents[2]
ENTRY_POINT = "tuneline = services.cli:main"


def project() -> tuple[str, str]:
    """The name and version pyproject.toml declares."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return str(meta["name"]), str(meta["version"])


def packaged_sources(repo: Path = REPO) -> set[str]:
    """The paths (as inside the wheel) of every file the distribution must hold."""
    wanted = {str(p.relative_to(repo)) for top in ("services", "benchmarks") for p in (repo / top).rglob("*.py")}
    protos = repo / "protos"
    wanted |= {str(p.relative_to(protos)) for suffix in ("*.py", "*.pyi", "*.proto") for p in (protos / "tuneline").rglob(suffix)}
    return {w for w in wanted if "__pycache__" not in w}


def check_wheel(wheel: Path, name: str, version: str, sources: set[str]) -> list[str]:
    """What is wrong with the wheel, if anything."""
    problems = []
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"{name}-{version}.dist-info"
        if f"{info}/METADATA" not in names:
            return [f"{wheel.name}: no {info}/METADATA: the wheel is not {name} {version}"]
        meta = Parser().parsestr(z.read(f"{info}/METADATA").decode())
        if (meta["Name"], meta["Version"]) != (name, version):
            problems.append(f"{wheel.name}: metadata says {meta['Name']} {meta['Version']}, pyproject.toml {name} {version}")
        entry_points = z.read(f"{info}/entry_points.txt").decode() if f"{info}/entry_points.txt" in names else ""
        if ENTRY_POINT not in [line.strip() for line in entry_points.splitlines()]:
            problems.append(f"{wheel.name}: no console script `{ENTRY_POINT}`")
    missing = sorted(sources - names)
    if missing:
        problems.append(f"{wheel.name} lacks {len(missing)} file(s) of the tree, e.g. {', '.join(missing[:5])}")
    return problems


def check_sbom(sbom: dict[str, Any], locked: list[tuple[str, str]], name: str, version: str) -> list[str]:
    """What is wrong with the SBOM, if anything: every locked package with its version, and nothing else."""
    problems = []
    if sbom.get("bomFormat") != "CycloneDX" or not str(sbom.get("specVersion", "")).startswith("1."):
        problems.append(f"not a CycloneDX 1.x document (bomFormat {sbom.get('bomFormat')!r}, specVersion {sbom.get('specVersion')!r})")
    root = sbom.get("metadata", {}).get("component", {})
    if (root.get("name"), root.get("version")) != (name, version):
        problems.append(f"it describes {root.get('name')} {root.get('version')}, not {name} {version}")
    listed: dict[str, set[str]] = {}
    purls: set[str] = set()
    for component in sbom.get("components", []):
        listed.setdefault(normalized(str(component.get("name", ""))), set()).add(str(component.get("version", "")))
        purls.add(str(component.get("purl", "")))
    for package, pinned in locked:
        key = normalized(package)
        if key not in listed:
            problems.append(f"{package}=={pinned} is locked but not listed")
        elif listed[key] != {pinned}:
            problems.append(f"{package} is locked at {pinned} but listed at {', '.join(sorted(listed[key]))}")
        elif f"pkg:pypi/{key}@{pinned}" not in purls:
            problems.append(f"{package}=={pinned} has no package URL pkg:pypi/{key}@{pinned}")
    extra = sorted(set(listed) - {normalized(p) for p, _ in locked})
    if extra:
        problems.append(f"listed but not locked: {', '.join(extra)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check the wheel and the SBOM; exit status 1 on any problem."""
    parser = argparse.ArgumentParser(description="Check the release artifacts: the wheel and the SBOM of the lock.")
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--sbom", type=Path, required=True)
    parser.add_argument("--lock", type=Path, default=REPO / "requirements.lock")
    args = parser.parse_args(argv)
    name, version = project()
    locked = pins(args.lock)
    problems = [f"wheel: {p}" for p in check_wheel(args.wheel, name, version, packaged_sources())]
    problems += [f"sbom {args.sbom.name}: {p}" for p in check_sbom(json.loads(args.sbom.read_text()), locked, name, version)]
    for problem in problems:
        print(f"release check: {problem}", file=sys.stderr)
    if problems:
        print(f"release check: FAILED, {len(problems)} problem(s)")
        return 1
    print(f"release check: {args.wheel.name} is {name} {version} with every module; {args.sbom.name} lists all "
          f"{len(locked)} packages of {args.lock.name} at their locked versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
