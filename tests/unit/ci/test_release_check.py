"""The release check (scripts/ci/check_release.py): the SBOM lists the lock exactly; the wheel holds the tree."""

from __future__ import annotations

import zipfile
from pathlib import Path

from scripts.ci.check_release import ENTRY_POINT, check_sbom, check_wheel, packaged_sources

LOCKED = [("Faker", "40.63.0"), ("typing_extensions", "4.16.0")]


def sbom(*components: tuple[str, str], root: tuple[str, str] = ("tuneline", "0.1.0")) -> dict[str, object]:
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "metadata": {"component": {"name": root[0], "version": root[1]}},
            "components": [{"name": n, "version": v, "purl": f"pkg:pypi/{n.lower().replace('_', '-')}@{v}"} for n, v in components]}


def test_an_sbom_of_the_lock_passes() -> None:
    assert check_sbom(sbom(*LOCKED), LOCKED, "tuneline", "0.1.0") == []


def test_a_missing_package_a_wrong_version_and_an_extra_one_are_named() -> None:
    problems = check_sbom(sbom(("Faker", "40.0.0"), ("six", "1.17.0")), LOCKED, "tuneline", "0.1.0")
    assert problems == ["Faker is locked at 40.63.0 but listed at 40.0.0", "typing_extensions==4.16.0 is locked but not listed",
                        "listed but not locked: six"]


def test_an_sbom_of_another_version_or_format_fails() -> None:
    other = {**sbom(*LOCKED, root=("tuneline", "0.0.9")), "bomFormat": "SPDX"}
    assert len(check_sbom(other, LOCKED, "tuneline", "0.1.0")) == 2


def test_the_wheel_must_carry_the_metadata_the_command_and_every_module(tmp_path: Path) -> None:
    wheel = tmp_path / "tuneline-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tuneline-0.1.0.dist-info/METADATA", "Metadata-Version: 2.4\nName: tuneline\nVersion: 0.1.0\n")
        z.writestr("tuneline-0.1.0.dist-info/entry_points.txt", f"[console_scripts]\n{ENTRY_POINT}\n")
        z.writestr("services/cli.py", "")
    assert check_wheel(wheel, "tuneline", "0.1.0", {"services/cli.py"}) == []
    assert check_wheel(wheel, "tuneline", "0.2.0", {"services/cli.py"})[0].endswith("the wheel is not tuneline 0.2.0")
    assert "lacks 1 file(s) of the tree, e.g. tuneline/events/v1/events_pb2.py" in check_wheel(
        wheel, "tuneline", "0.1.0", {"services/cli.py", "tuneline/events/v1/events_pb2.py"})[0]


def test_the_distribution_must_hold_the_generated_code_and_the_protos() -> None:
    wanted = packaged_sources()
    assert {"services/cli.py", "tuneline/events/v1/events_pb2.py", "tuneline/events/v1/events.proto",
            "tuneline/events/v1/events_pb2.pyi", "benchmarks/cli.py"} <= wanted
