"""Checked boundaries: generated code matches the protos; the kernel imports no service and
services never import each other; nothing in services/ but the `tuneline` composer imports
benchmarks/ (STYLE.md rules 9 and 10)."""

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
    """Every module a file imports: `from a import b` counts as `a` and `a.b` (b may be a module),
    and a literal `importlib.import_module("a.b")` as `a.b`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


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


# The top-level composer may add `tuneline bench`; it reaches benchmarks/ through their CLI only.
COMPOSER = Path("services") / "cli.py"


def test_services_import_benchmarks_only_at_the_composition_point() -> None:
    problems = []
    for path in (REPO / "services").rglob("*.py"):
        rel = path.relative_to(REPO)
        allowed = ("benchmarks.cli",) if rel == COMPOSER else ()
        problems += [f"{rel} imports {name}" for name in _imports(path)
                     if name.split(".")[0] == "benchmarks" and ".".join(name.split(".")[:2]) not in allowed]
    assert not problems, problems


def test_kernel_imports_neither_the_stack_nor_benchmarks() -> None:
    problems = []
    for path in (REPO / "services" / "kernel").rglob("*.py"):
        for name in _imports(path):
            bits = name.split(".")
            if bits[0] == "benchmarks" or bits[:2] == ["services", "stack"]:
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


def test_no_code_copies_a_model_with_unvalidated_model_copy() -> None:
    # `model_copy(update=...)` validates nothing; settings, goals and rollout values have `replace`.
    allowed = {REPO / "tests" / "unit" / "kernel" / "test_settings.py"}  # shows the difference
    found = [f"{path.relative_to(REPO)}:{node.lineno}"
             for root in ("services", "benchmarks", "tests") for path in sorted((REPO / root).rglob("*.py")) if path not in allowed
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "model_copy"]
    assert not found, f"use .replace(...) (validated) instead of .model_copy: {found}"
