"""The vulnerability scan's decisions (scripts/ci/vuln_scan.py), with pip-audit and the network faked."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from scripts.ci import vuln_scan as vs

TODAY = date(2026, 12, 1)
OLD_REQUESTS = {"name": "requests", "version": "2.19.0", "vulns": [
    {"id": "PYSEC-2018-28", "aliases": ["CVE-2018-18074"], "fix_versions": ["2.20.0"]},
    {"id": "PYSEC-2023-74", "aliases": ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"], "fix_versions": ["2.31.0"]},
]}


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text("requests==2.19.0\nnumpy==2.4.6\n")
    return path


def allowlist(tmp_path: Path, *entries: dict[str, object]) -> Path:
    path = tmp_path / "allow.yaml"
    path.write_text(json.dumps({"entries": list(entries)}))  # JSON is YAML
    return path


def entry(id: str = "CVE-2018-18074", package: str = "requests", expires: str = "2027-01-31", **more: object) -> dict[str, object]:
    return {"id": id, "package": package, "reason": "not reachable from Tuneline", "expires": expires, **more}


def pip_audit(*deps: dict[str, Any], code: int = 1, calls: list[list[str]] | None = None) -> vs.Runner:
    """A pip-audit that writes this report (exit status 1 when it found something, as pip-audit does)."""
    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        if calls is not None:
            calls.append(cmd)
        if code in (0, 1):
            Path(cmd[cmd.index("--output") + 1]).write_text(json.dumps({"dependencies": list(deps), "fixes": []}))
        return subprocess.CompletedProcess(cmd, code, "", "Traceback ...\nrequests.exceptions.ConnectionError: boom")
    return run


def reach(*down: str) -> vs.Reach:
    return lambda service, _first, _url: f"{service} is down" if service in down else ""


def scan(tmp_path: Path, lock: Path, run: vs.Runner, allow: Path | None = None, down: tuple[str, ...] = ()) -> vs.Outcome:
    return vs.scan("pip-audit", [lock], allow or tmp_path / "none.yaml", ["osv", "pypi"], vs.OSV_URL, TODAY, run=run,
                   reach=reach(*down))


def test_a_known_vulnerability_fails_the_scan(tmp_path, lock) -> None:
    out = scan(tmp_path, lock, pip_audit(OLD_REQUESTS, {"name": "numpy", "version": "2.4.6", "vulns": []}))
    assert (out.status, out.exit_code, out.service, out.audited) == ("vulnerable", vs.VULNERABLE, "osv", 2)
    assert out.findings[0].startswith("requests 2.19.0 in requirements.lock: PYSEC-2018-28 (CVE-2018-18074), fixed in 2.20.0")


def test_allowed_by_any_alias_for_that_package_only_and_stale_entries_are_reported(tmp_path, lock) -> None:
    allow = allowlist(tmp_path, entry(), entry("GHSA-j8r2-6x86-q33q", "Requests"), entry("PYSEC-2018-28", "numpy"))
    out = scan(tmp_path, lock, pip_audit(OLD_REQUESTS, {"name": "numpy", "version": "2.4.6", "vulns": []}), allow)
    assert (out.status, out.exit_code, out.findings) == ("clean", vs.CLEAN, [])
    assert len(out.allowed) == 2 and "not reachable from Tuneline" in out.allowed[0]
    assert out.stale_allowlist == [f"PYSEC-2018-28 for numpy matches no finding: remove it from {allow}"]


def test_an_expired_entry_fails_even_when_no_database_answers(tmp_path, lock) -> None:
    allow = allowlist(tmp_path, entry(expires="2026-11-30"))
    out = scan(tmp_path, lock, pip_audit(OLD_REQUESTS), allow, down=("osv", "pypi"))
    assert (out.status, out.exit_code) == ("invalid-allowlist", vs.VULNERABLE)
    assert "expired on 2026-11-30" in out.allowlist_problems[0]


@pytest.mark.parametrize("bad, problem", [
    ({"id": "X-1", "package": "p", "reason": "r"}, "missing expires"),
    ({**entry(), "severity": "low"}, "unknown key severity"),
    ({**entry(), "reason": " "}, "empty reason"),
    (entry(expires="next year"), "expires must be a date"),
])
def test_malformed_entries_are_named(tmp_path, bad, problem) -> None:
    entries, problems = vs.load_allowlist(allowlist(tmp_path, bad), TODAY)
    assert entries == [] and problem in problems[0]


def test_a_duplicate_entry_is_refused(tmp_path) -> None:
    _, problems = vs.load_allowlist(allowlist(tmp_path, entry(), entry(package="REQUESTS")), TODAY)
    assert "listed twice" in problems[0]


def test_unreachable_is_its_own_exit_status(tmp_path, lock) -> None:
    calls: list[list[str]] = []
    out = scan(tmp_path, lock, pip_audit(OLD_REQUESTS, calls=calls), down=("osv", "pypi"))
    assert (out.status, out.exit_code, calls) == ("unreachable", vs.UNREACHABLE, [])
    assert out.messages == ["osv: unreachable: osv is down", "pypi: unreachable: pypi is down"]


def test_a_service_that_audits_nothing_is_unreachable_and_the_next_one_is_tried(tmp_path, lock) -> None:
    skipped = {"name": "requests", "skip_reason": "Dependency not found on PyPI and could not be audited: requests (2.19.0)"}
    answers = iter([pip_audit(skipped, code=0), pip_audit(OLD_REQUESTS)])
    out = scan(tmp_path, lock, lambda cmd: next(answers)(cmd))
    assert (out.service, out.exit_code) == ("pypi", vs.VULNERABLE)
    assert "osv: unreachable: it audited none of the 1 packages" in out.messages[0]


def test_a_partial_scan_is_not_a_pass(tmp_path, lock) -> None:
    skipped = {"name": "numpy", "skip_reason": "Dependency not found on PyPI and could not be audited: numpy (2.4.6)"}
    out = scan(tmp_path, lock, pip_audit({"name": "requests", "version": "2.31.0", "vulns": []}, skipped, code=0))
    assert (out.status, out.exit_code, out.audited) == ("vulnerable", vs.VULNERABLE, 1) and out.skipped[0].startswith("numpy")


def test_a_scanner_failure_while_the_service_answers_is_an_error(tmp_path, lock) -> None:
    out = scan(tmp_path, lock, pip_audit(code=2))
    assert (out.status, out.exit_code) == ("error", vs.SCANNER_ERROR) and "ConnectionError: boom" in out.messages[0]


def test_each_lock_is_audited_on_its_own_with_the_osv_mirror(tmp_path, lock) -> None:
    tools = tmp_path / "tools.lock"
    tools.write_text("# tools\nrequests==2.34.2\n")
    calls: list[list[str]] = []
    out = vs.scan("pip-audit", [lock, tools], tmp_path / "none.yaml", ["osv"], "http://127.0.0.1:1/v1/query", TODAY,
                  run=pip_audit({"name": "requests", "version": "2.34.2", "vulns": []}, code=0, calls=calls),
                  reach=reach())
    assert out.exit_code == vs.CLEAN and [c[c.index("-r") + 1] for c in calls] == [str(lock), str(tools)]
    assert all(c[c.index("--osv-url") + 1] == "http://127.0.0.1:1/v1/query" and "--no-deps" in c for c in calls)


def test_the_repository_allowlist_is_valid() -> None:
    entries, problems = vs.load_allowlist(Path(__file__).resolve().parents[3] / "security" / "vulnerability-allowlist.yaml", date.today())
    assert problems == []
