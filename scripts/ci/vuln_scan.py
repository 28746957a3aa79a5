"""CI vulnerability scan of the locked dependencies: pip-audit, and a reviewed allow-list.

pip-audit (installed from requirements-tools.lock into .venv-tools, never into the runtime) reads the
lock files as they are (`--no-deps --disable-pip`: every line pins one version, nothing is installed)
and asks a vulnerability service about each pinned version. The services are tried in the order given
(`--service`, default osv then pypi): OSV (api.osv.dev: PyPA's advisory database plus GitHub's
advisories) has the widest coverage; PyPI's JSON API serves PyPA's advisories per release.

A known vulnerability fails the scan unless `--allowlist` lists it (its advisory id or any alias, and
the package) with a reason and an expiry date. An expired or malformed entry fails the scan even when
no service can be reached; an entry that matches nothing is reported, so that it can be removed.

Exit status, which is how CI tells the cases apart:
  0  every pinned package was audited; no finding outside the allow-list
  1  vulnerable: a finding outside the allow-list, an invalid or expired allow-list entry, or packages
     the service could not audit (a partial scan is not a pass)
  2  the scanner failed for another reason (its output is shown)
  3  unreachable: no vulnerability service answered (a connection error, a timeout, or an answer that
     audited none of the packages, as when a registry mirror does not serve PyPI's per-release JSON)
The Makefile's `vuln-scan` passes on 3 with a warning unless VULN_SCAN_REQUIRE_DB=1.

Usage: python -m scripts.ci.vuln_scan --pip-audit .venv-tools/bin/pip-audit --lock requirements.lock
           --allowlist security/vulnerability-allowlist.yaml [--service osv --service pypi] [--osv-url URL]
           [--report build/ci/vuln-scan.json] [--today YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from scripts.ci.locks import normalized, pins

CLEAN, VULNERABLE, SCANNER_ERROR, UNREACHABLE = 0, 1, 2, 3
SERVICES = ("osv", "pypi")
OSV_URL = "https://api.osv.dev/v1/query"
PYPI_RELEASE_URL = "https://pypi.org/pypi/{name}/{version}/json"
ENTRY_KEYS = {"id", "package", "reason", "expires"}
OPTIONAL_KEYS = {"reviewed_by"}
TIMEOUT_S = 15


# ------------------------------------------------------------------ the allow-list


@dataclass(frozen=True)
class Allowed:
    """One reviewed exception."""

    id: str
    package: str
    reason: str
    expires: date
    reviewed_by: str = ""


def load_allowlist(path: Path, today: date) -> tuple[list[Allowed], list[str]]:
    """The entries of an allow-list file, and its problems (malformed, duplicated or expired entries)."""
    if not path.exists():
        return [], []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw = data.get("entries") if isinstance(data, dict) else None
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        return [], [f"{path}: `entries` must be a list"]
    entries, problems, seen = [], [], set()
    for i, item in enumerate(raw):
        where = f"{path} entry {i + 1}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping with {', '.join(sorted(ENTRY_KEYS))}")
            continue
        missing, unknown = ENTRY_KEYS - set(item), set(item) - ENTRY_KEYS - OPTIONAL_KEYS
        empty = [k for k in ("id", "package", "reason") if k in item and not str(item[k] or "").strip()]
        if missing or unknown or empty:
            problems.append(f"{where}: " + "; ".join(
                [f"missing {', '.join(sorted(missing))}"] * bool(missing) + [f"unknown key {', '.join(sorted(unknown))}"] * bool(unknown)
                + [f"empty {', '.join(empty)}"] * bool(empty)))
            continue
        expires = _date(item["expires"])
        if expires is None:
            problems.append(f"{where} ({item['id']}): expires must be a date, YYYY-MM-DD")
            continue
        entry = Allowed(str(item["id"]).strip(), str(item["package"]).strip(), str(item["reason"]).strip(), expires,
                        str(item.get("reviewed_by") or ""))
        key = (entry.id.upper(), normalized(entry.package))
        if key in seen:
            problems.append(f"{where}: {entry.id} for {entry.package} is listed twice")
            continue
        seen.add(key)
        if expires < today:
            problems.append(f"{where}: {entry.id} for {entry.package} expired on {expires.isoformat()}: upgrade the package, "
                            "or review the exception again and renew it with a new date")
            continue
        entries.append(entry)
    return entries, problems


def _date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


# ------------------------------------------------------------------ pip-audit's answer


@dataclass(frozen=True)
class Finding:
    """A known vulnerability of one pinned package."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()
    lock: str = ""

    def matches(self, entry: Allowed) -> bool:
        """Whether an allow-list entry names this finding (by its id or an alias, for this package)."""
        ids = {self.id.upper(), *(a.upper() for a in self.aliases)}
        return entry.id.upper() in ids and normalized(entry.package) == normalized(self.package)

    def describe(self) -> str:
        """One line for the log."""
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fixed = f"fixed in {', '.join(self.fix_versions)}" if self.fix_versions else "no fixed version yet"
        where = f" in {self.lock}" if self.lock else ""
        return f"{self.package} {self.version}{where}: {self.id}{aliases}, {fixed}"


@dataclass
class Audit:
    """What one service said about the pinned packages."""

    audited: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def parse_audit(report: dict[str, Any], lock: str = "") -> Audit:
    """pip-audit's JSON report (`-f json`) over one lock file."""
    audit = Audit()
    for dep in report.get("dependencies", []):
        if dep.get("skip_reason"):
            audit.skipped.append(f"{dep.get('name')} ({lock}): {dep['skip_reason']}")
            continue
        audit.audited += 1
        for vuln in dep.get("vulns", []):
            audit.findings.append(Finding(dep["name"], dep.get("version", ""), vuln["id"], tuple(vuln.get("aliases", [])),
                                          tuple(vuln.get("fix_versions", [])), lock))
    return audit


# ------------------------------------------------------------------ reaching a service


def probe(service: str, first: tuple[str, str], osv_url: str, timeout_s: float = TIMEOUT_S) -> str:
    """Why `service` cannot be reached, or "" when it answers a query for one pinned package."""
    name, version = first
    if service == "osv":
        body = json.dumps({"package": {"name": normalized(name), "ecosystem": "PyPI"}, "version": version}).encode()
        request = urllib.request.Request(osv_url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    else:
        request = urllib.request.Request(PYPI_RELEASE_URL.format(name=normalized(name), version=version))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read(1)
    except urllib.error.HTTPError as err:
        if err.code == 404 or err.code >= 500:
            return f"{request.full_url} answered HTTP {err.code}"
        return ""  # any other answer: the service is there; pip-audit reports what is wrong
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        return f"{request.full_url} cannot be reached: {reason}"
    return ""


Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]
Reach = Callable[[str, tuple[str, str], str], str]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@dataclass
class Outcome:
    """The scan's result, as the report file records it."""

    status: str
    exit_code: int
    service: str = ""
    audited: int = 0
    findings: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    stale_allowlist: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    allowlist_problems: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def scan(pip_audit: str, locks: Sequence[Path], allowlist: Path, services: Sequence[str], osv_url: str, today: date,
         run: Runner = _run, reach: Reach = probe) -> Outcome:
    """Audit the locks with the first service that answers, then apply the allow-list."""
    entries, problems = load_allowlist(allowlist, today)
    pinned = [p for lock in locks for p in pins(lock)]
    messages: list[str] = []
    audit: Audit | None = None
    used = ""
    for service in services:
        why = reach(service, pinned[0], osv_url)
        if not why:
            result, failure = _audit(pip_audit, locks, service, osv_url, run)
            if failure:
                why = reach(service, pinned[0], osv_url)  # did it go away while we scanned?
                if not why:
                    return Outcome("error", SCANNER_ERROR, service, allowlist_problems=problems,
                                   messages=[*messages, f"pip-audit ({service}) failed: {failure}"])
            elif result is not None and result.audited == 0:
                why = f"it audited none of the {len(result.skipped)} packages ({result.skipped[0] if result.skipped else 'no answer'})"
            else:
                audit, used = result, service
                break
        messages.append(f"{service}: unreachable: {why}")
    if audit is None:
        if problems:  # checked offline: an expired or malformed entry fails even when no service answers
            return Outcome("invalid-allowlist", VULNERABLE, allowlist_problems=problems, messages=messages)
        return Outcome("unreachable", UNREACHABLE, messages=messages)
    open_findings = [f for f in audit.findings if not any(f.matches(e) for e in entries)]
    allowed = [f"{f.describe()} -- allowed: {e.reason} (until {e.expires.isoformat()})"
               for f in audit.findings for e in entries if f.matches(e)]
    stale = [f"{e.id} for {e.package} matches no finding: remove it from {allowlist}"
             for e in entries if not any(f.matches(e) for f in audit.findings)]
    bad = bool(open_findings or problems or audit.skipped)
    return Outcome("vulnerable" if bad else "clean", VULNERABLE if bad else CLEAN, used, audit.audited,
                   [f.describe() for f in open_findings], allowed, stale, audit.skipped, problems, messages)


def _audit(pip_audit: str, locks: Sequence[Path], service: str, osv_url: str, run: Runner) -> tuple[Audit | None, str]:
    """Run pip-audit over each lock (one run each: two locks may pin one package differently); the merged
    report, or why a run produced none."""
    merged = Audit()
    with tempfile.TemporaryDirectory(prefix="tuneline-vuln-") as tmp:
        for i, lock in enumerate(locks):
            out = Path(tmp) / f"audit-{i}.json"
            cmd = [pip_audit, "-r", str(lock), "--no-deps", "--disable-pip", "--progress-spinner", "off",
                   "--vulnerability-service", service, "--aliases", "on", "--desc", "off", "--timeout", str(TIMEOUT_S),
                   "--format", "json", "--output", str(out)]
            if service == "osv" and osv_url != OSV_URL:
                cmd += ["--osv-url", osv_url]
            done = run(cmd)
            if done.returncode not in (0, 1) or not out.exists():
                tail = [line for line in (done.stderr or done.stdout).strip().splitlines() if "WARNING" not in line][-3:]
                return None, f"{lock}: exit status {done.returncode}: " + " | ".join(tail)
            audit = parse_audit(json.loads(out.read_text()), lock.name)
            merged.audited += audit.audited
            merged.findings += audit.findings
            merged.skipped += audit.skipped
    return merged, ""


def main(argv: list[str] | None = None) -> int:
    """Scan, print what was found, write the report; the exit status says which case it was."""
    parser = argparse.ArgumentParser(description="Scan the locked dependencies for known vulnerabilities (pip-audit).")
    parser.add_argument("--pip-audit", default=".venv-tools/bin/pip-audit")
    parser.add_argument("--lock", type=Path, action="append", required=True)
    parser.add_argument("--allowlist", type=Path, default=Path("security/vulnerability-allowlist.yaml"))
    parser.add_argument("--service", action="append", choices=SERVICES)
    parser.add_argument("--osv-url", default=OSV_URL, help="an OSV-compatible query endpoint (e.g. an internal mirror)")
    parser.add_argument("--report", type=Path)
    parser.add_argument("--today", type=date.fromisoformat, default=datetime.now(UTC).date())
    args = parser.parse_args(argv)
    outcome = scan(args.pip_audit, args.lock, args.allowlist, args.service or list(SERVICES), args.osv_url, args.today)
    sections = [("vulnerability scan:", outcome.messages), ("ALLOW-LIST", outcome.allowlist_problems), ("VULNERABLE", outcome.findings),
                ("NOT AUDITED", outcome.skipped), ("allowed", outcome.allowed), ("stale allow-list entry:", outcome.stale_allowlist)]
    for prefix, lines in sections:
        for line in lines:
            print(f"{prefix} {line}")
    print(_summary(outcome, args.lock))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(asdict(outcome), indent=2) + "\n")
    return outcome.exit_code


def _summary(o: Outcome, locks: Sequence[Path]) -> str:
    names = ", ".join(str(lock) for lock in locks)
    if o.status == "clean":
        return f"vulnerability scan: clean: {o.audited} pinned packages of {names} audited with {o.service}, {len(o.allowed)} allowed"
    if o.status == "unreachable":
        return (f"vulnerability scan: UNREACHABLE: no vulnerability database answered; {names} NOT scanned "
                "(exit status 3; run it where OSV or PyPI's JSON API can be reached, or point --osv-url at a mirror)")
    if o.status == "error":
        return "vulnerability scan: ERROR: the scanner failed (exit status 2)"
    return (f"vulnerability scan: FAILED: {len(o.findings)} vulnerabilities outside the allow-list, {len(o.skipped)} packages not "
            f"audited, {len(o.allowlist_problems)} allow-list problems (exit status 1)")


if __name__ == "__main__":
    sys.exit(main())
