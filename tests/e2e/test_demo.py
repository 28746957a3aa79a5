"""The whole loop: `tuneline demo --quick` through the real broker, every service a real process.

It must exit 0 (each stage checked by the demo itself: registration, training, the gate, the
weak candidate refused, canary → promotion under gRPC traffic, drift → rollback, lineage), and the
dataset's trace must be one connected tree across the five services.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import jsonschema
import psycopg
import pytest

from services.kernel import broker, postgres
from services.kernel.sealing import MAGIC
from services.kernel.settings import Settings
from services.kernel.telemetry import read_spans
from tests.support import (
    ALERTMANAGER_SCHEMA,
    REPO,
    AlertSink,
    catalogue,
    dashboard_expressions,
    free_ports,
    metric_total,
    parse_metrics,
    series_in,
    settings_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SERVICES = {"ingest", "trainer", "evaluator", "deployer", "monitor"}


def _log_tails(state: Path, lines: int = 40) -> str:
    """The end of each service's log, so that a CI failure says which service did what."""
    return "\n".join(f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                     for log in sorted(state.glob("demo/*/logs/*.log")))


def _run_demo(tmp_path: Path, settings: Settings, env: dict[str, str], *flags: str) -> str:
    """`tuneline demo --quick FLAGS` to its end; its output, after checking that every stage passed."""
    try:
        done = subprocess.run([sys.executable, "-m", "services.cli", "demo", "--quick", *flags], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=1500)
    except subprocess.TimeoutExpired as late:
        partial = (late.stdout or b"").decode(errors="replace") if isinstance(late.stdout, bytes) else (late.stdout or "")
        pytest.fail(f"the demo ran past 1,500 s:\n{partial[-4000:]}\n{_log_tails(settings.state_dir)}")
    output = done.stdout + done.stderr
    (tmp_path / "demo.log").write_text(output)
    assert done.returncode == 0, f"the demo failed:\n{output[-6000:]}\n{_log_tails(settings.state_dir)}"
    for stage in ("goal applied", "initial export", "real traffic through gRPC", "ground truth → live accuracy",
                  "weaker version refused by the gate",
                  "complete export: canary", "drift → rollback", "lineage of one prediction",
                  "registry: stages and a run comparison"):
        assert stage in output
    assert "FAILED" not in output
    return output


# The demo process gets 1,500 s; the test's own limit is above it, so a slow machine shows the
# demo's output and the services' logs rather than a bare pytest timeout.
@pytest.mark.timeout(1700)
def test_quick_demo_runs_the_whole_loop(tmp_path: Path, kafka_ready: str) -> None:
    deployer_port, monitor_port = free_ports(2)
    settings = Settings(state_dir=tmp_path / "state", kafka_bootstrap=kafka_ready,
                        deployer_address=f"127.0.0.1:{deployer_port}", monitor_address=f"127.0.0.1:{monitor_port}")
    sink = AlertSink()
    env = settings_env(settings, TUNELINE_NAMESPACE="", COLUMNS="200", TUNELINE_MONITOR_ALERT_WEBHOOKS=json.dumps([sink.url]))
    env.pop("TUNELINE_ARTIFACT_ROOT")
    try:
        output = _run_demo(tmp_path, settings, env)
    finally:
        sink.close()
    drift = [(m["status"], m["alerts"][0]["labels"]["goal"]) for m in sink.received
             if m["alerts"][0]["labels"]["alertname"] == "tuneline_drift"]
    assert drift == [("firing", "banking77"), ("resolved", "banking77")], \
        f"the drift alert once, then its resolve: {drift}"
    for message in sink.received:
        jsonschema.validate(message, ALERTMANAGER_SCHEMA)

    trace_id, state_dir = re.search(r"tuneline trace ([0-9a-f]{32}) --state-dir (\S+)", output).groups()  # type: ignore[union-attr]
    spans = read_spans(Path(state_dir))
    in_trace = {s["span_id"]: s for s in spans if s["trace_id"] == trace_id}
    linked = [s for s in spans if any(ln["trace_id"] == trace_id for ln in s["links"])]
    orphans = [s["name"] for s in in_trace.values() if s["parent_id"] and s["parent_id"] not in in_trace]
    assert not orphans, f"spans of the dataset's trace whose parent is missing: {orphans}"
    roots = [s for s in in_trace.values() if not s["parent_id"]]
    assert [r["name"] for r in roots] == ["dataset.publish"], "one tree, rooted at the publication"
    services = {s["service"] for s in in_trace.values()} | {s["service"] for s in linked}
    assert SERVICES <= services, f"the trace misses {SERVICES - services}"
    assert any(s["service"] == "deployer" and s["name"] == "inference.predict" for s in linked), \
        "predictions served by the new model link to the dataset's trace"
    _check_scraped_metrics(Path(state_dir))


def _check_scraped_metrics(state_dir: Path) -> None:
    """What the demo scraped from each service's /metrics, read with prometheus_client's parser: the series
    of docs/metrics.md, values that follow what the demo did, and every dashboard and alert rule expression
    naming a series some service exported."""
    exported: dict[str, set[str]] = {}
    values: dict[str, float] = {}
    for service in SERVICES:
        samples = parse_metrics((state_dir / "metrics" / f"{service}.prom").read_text())
        exported[service] = {key.partition("{")[0] for key in samples}
        values |= {f"{service}:{k}": v for k, v in samples.items()}
    names = set().union(*exported.values())
    family = re.compile(r"_(bucket|count|sum|total)$")
    for service, series in catalogue().items():
        missing = {s for s in series if not any(family.sub("", n) == s or n == s for n in exported[service])}
        assert not missing, f"{service} did not export {sorted(missing)}"

    def total(service: str, name: str, **labels: str) -> float:
        return metric_total({k.partition(":")[2]: v for k, v in values.items() if k.startswith(f"{service}:")}, name, **labels)

    assert total("evaluator", "tuneline_gate_decisions_total", decision="failed") >= 1, "the weak version failed its gate"
    assert total("evaluator", "tuneline_gate_decisions_total", decision="passed") >= 2
    assert total("trainer", "tuneline_training_runs_total", state="finished") >= 3
    assert total("monitor", "tuneline_drift_windows_total", drifted="true") >= 1, "the shifted traffic drifted"
    assert total("deployer", "tuneline_serving_request_duration_seconds_count", variant="canary", status="OK") >= 1
    for expr in dashboard_expressions():
        for name in series_in(expr):
            assert name in names or f"{name}_total" in names or f"{name}_bucket" in names, \
                f"the dashboard or an alert rule queries {name}, which no service exported: {expr}"


@pytest.mark.timeout(1700)
def test_quick_demo_passes_with_security_on_and_postgresql_stores(tmp_path: Path, postgres_ready: Settings) -> None:
    """`demo --quick --secure --store URL`: its own broker with SASL_SSL and ACLs (each service its own
    identity), mTLS and scoped tokens on both gRPC servers, artifacts sealed at rest, every service's
    store on the PostgreSQL server; the same stages pass."""
    prefix = f"e2e_{uuid.uuid4().hex[:8]}"
    postgres.create_service_databases(postgres_ready, prefix)
    kafka_port, controller_port, deployer_port, monitor_port = free_ports(4)
    settings = Settings(state_dir=tmp_path / "state", kafka_port=kafka_port, kafka_controller_port=controller_port,
                        deployer_address=f"127.0.0.1:{deployer_port}", monitor_address=f"127.0.0.1:{monitor_port}")
    env = settings_env(settings, TUNELINE_NAMESPACE="", COLUMNS="200", TUNELINE_KAFKA_PORT=str(kafka_port),
                       TUNELINE_KAFKA_CONTROLLER_PORT=str(controller_port))
    for name in ("TUNELINE_ARTIFACT_ROOT", "TUNELINE_KAFKA_BOOTSTRAP"):
        env.pop(name)
    _run_demo(tmp_path, settings, env, "--secure", "--store", postgres.store_url(postgres_ready, prefix))
    [run] = (settings.state_dir / "demo").iterdir()
    assert not (run / "stores").exists(), "no SQLite store: every service kept its state in PostgreSQL"
    with psycopg.connect(postgres.url(postgres_ready, f"{prefix}_deployer").replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM tuneline_outbox").fetchone()[0] > 0  # type: ignore[index]
    assert broker.is_secure(settings), "the demo's broker ran with SASL_SSL and ACLs"
    assert (run / "tls" / "client.env").is_file() and (run / "keys" / "at-rest.key").is_file()
    stored = [p for p in (run / "artifacts").rglob("*") if p.is_file() and not p.name.startswith(".partial")]
    assert len(stored) > 10, "the loop stored its snapshots, adapters and reports"
    plain = [str(p.relative_to(run)) for p in stored if not p.read_bytes().startswith(MAGIC)]
    assert not plain, f"stored in clear with an at-rest key set: {plain[:5]}"
    with (REPO / "datasets" / "banking77" / "train.csv").open(newline="") as f:
        rows = [row["text"] for _, row in zip(range(50), csv.DictReader(f), strict=False)]
    leaked = [r for r in rows if len(r) > 20 and any(r.encode() in p.read_bytes() for p in stored)]
    assert not leaked, f"training rows found in clear in the artifact store: {leaked[:3]}"
    assert not broker.read_pid(settings), "the demo stops the secure broker it started"
