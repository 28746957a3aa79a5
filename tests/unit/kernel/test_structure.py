"""Checked boundaries: generated code matches the protos; the kernel imports no service and
services never import each other (STYLE.md rules 9 and 10)."""

from __future__ import annotations

import ast
import filecmp
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SERVICES = ("ingest", "trainer", "evaluator", "deployer", "monitor")


def test_committed_generated_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(["bash", str(REPO / "scripts" / "gen_protos.sh"), str(tmp_path)], check=True,
                   env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    def generated(root: Path) -> list[Path]:
        return sorted(p.relative_to(root) for p in root.rglob("*_pb2*.py*") if p.suffix in (".py", ".pyi"))

    fresh, committed = generated(tmp_path), generated(REPO / "protos")
    assert fresh == committed
    stale = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, REPO / "protos" / p, shallow=False)]
    assert not stale, f"regenerate with `make protos`: {stale}"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_kernel_imports_no_service_and_services_import_no_other_service() -> None:
    problems = []
    for path in (REPO / "services").rglob("*.py"):
        parts = path.relative_to(REPO / "services").parts
        owner = parts[0] if len(parts) > 1 else ""
        if owner not in SERVICES + ("kernel",):
            continue
        for name in _imports(path):
            bits = name.split(".")
            if bits[0] == "services" and len(bits) > 1 and bits[1] in SERVICES and bits[1] != owner:
                problems.append(f"{path.relative_to(REPO)} imports {name}")
    assert not problems, problems


def test_domain_modules_import_no_infrastructure() -> None:
    banned = {"confluent_kafka", "faust", "grpc", "ray", "torch", "sqlalchemy", "evidently", "transformers", "peft"}
    problems = []
    for path in (REPO / "services").glob("*/domain/**/*.py"):
        for name in _imports(path):
            if name.split(".")[0] in banned:
                problems.append(f"{path.relative_to(REPO)} imports {name}")
    assert not problems, problems
