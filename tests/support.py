"""Test support shared by every tier: reading events back from Kafka, running services as processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import grpc
from confluent_kafka import Consumer, TopicPartition
from tuneline.events.v1 import events_pb2 as ev
from tuneline.monitor.v1 import query_pb2 as q
from tuneline.monitor.v1 import query_pb2_grpc as q_grpc

from services.kernel import grpc_tls
from services.kernel.artifact_signing import BUNDLE_MEDIA_TYPE, sign_adapter
from services.kernel.blobs import BlobStore
from services.kernel.bus.producer import EventProducer
from services.kernel.events import Incoming, Outgoing, Record, decode, encode
from services.kernel.settings import Settings
from services.kernel.signing import SIGNED_BY, Signer
from services.kernel.telemetry import current_trace_headers

REPO = Path(__file__).resolve().parents[1]


def signed(settings: Settings, record: Record) -> Record:
    """A record signed as the service that may make its decision (a test playing that service);
    events that are not decisions come back as they were."""
    ce_type = dict(record.headers)["ce_type"].decode()
    allowed = SIGNED_BY.get(ce_type.removeprefix("tuneline.").removesuffix(".v1"))
    if not allowed:
        return record
    signer = Signer.load(settings, sorted(allowed)[0])
    assert signer is not None
    return signer.sign(record)


def signed_adapter(settings: Settings, blobs: BlobStore, folder: Path) -> tuple[ev.ArtifactRef, ev.ArtifactRef]:
    """An adapter folder stored as the trainer stores it (a test playing the trainer): its tree, and the
    Sigstore bundle of the trainer's model-signing signature over its files (`RunFinished.adapter_signature`)."""
    from services.kernel.modeling import adapter_files  # torch: only the tests that store adapters import it

    tree = blobs.put_tree(list(adapter_files(folder)), "application/vnd.tuneline.adapter")
    return tree, blobs.put_bytes(sign_adapter(settings, folder), BUNDLE_MEDIA_TYPE)


def publish_signed(settings: Settings, events: list[Outgoing], source: str = "test") -> list[str]:
    """Publish events as `publish_now` does, each decision signed by an identity that may make it."""
    trace = current_trace_headers()
    records = [signed(settings, encode(e, topic=settings.topic(e.event), source=source, trace_headers=trace)) for e in events]
    producer = EventProducer(settings)
    producer.send(records)
    producer.close()
    return [r.id for r in records]


def free_ports(n: int = 1) -> list[int]:
    """Ports free right now, handed out by the kernel: never a fixed range, where an ephemeral client port can sit."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a child process see the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNELINE_")}  # noqa: TID251 -- a child process's environment
    env.update({
        "TUNELINE_STATE_DIR": str(settings.state_dir),
        "TUNELINE_NAMESPACE": settings.namespace,
        "TUNELINE_KAFKA_BOOTSTRAP": settings.bootstrap,
        "TUNELINE_ARTIFACT_ROOT": settings.artifacts,
        "TUNELINE_DEPLOYER_ADDRESS": settings.deployer_address,
        "TUNELINE_MONITOR_ADDRESS": settings.monitor_address,
        "TUNELINE_CONSUMER_SESSION_TIMEOUT_S": "6",  # the broker's minimum: kill-and-restart tests rejoin sooner
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def start_process(args: list[str], settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    """Start a process (e.g. a service) with the test's settings, logging to a file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(args, env=settings_env(settings, **extra), cwd=REPO, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def python(*args: str) -> list[str]:
    """A command line running this interpreter."""
    return [sys.executable, *args]


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
    """Signal a process we started (by its own pid) and wait for it; SIGKILL after the timeout."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def wait_for(check: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.1) -> object:
    """Poll until `check()` returns something truthy; fail the test with `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


class EventLog:
    """Reads a topic from the beginning with a fresh consumer group, keeping what it decoded."""

    def __init__(self, settings: Settings, event: str, raw: bool = False) -> None:
        self.settings, self.event, self.raw = settings, event, raw
        self.consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        topic = settings.topic(event)
        md = self.consumer.list_topics(topic, timeout=10).topics[topic]
        self.consumer.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        # Events of the type named by `event`, chosen at run time: tests read their messages' fields by name.
        self.items: list[Incoming[Any]] = []
        self.records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def poll(self, seconds: float = 0.2) -> None:
        """Read whatever arrived within `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = self.consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            # A consumed record's headers are (key, bytes) pairs (confluent_kafka types headers() as what produce() takes);
            # a record without an error has its topic, partition and offset.
            self.records.append((msg.key(), msg.value(), cast("list[tuple[str, bytes]]", msg.headers() or [])))
            if not self.raw:
                self.items.append(decode(msg.value(), cast("list[tuple[str, bytes]] | None", msg.headers()), topic=cast(str, msg.topic()),
                                         partition=cast(int, msg.partition()), offset=cast(int, msg.offset())))

    def wait(self, count: int, timeout_s: float = 60.0,
             where: Callable[[Incoming[Any]], bool] = lambda _: True) -> list[Incoming[Any]]:
        """Poll until at least `count` matching events arrived; returns the matching ones."""
        def enough() -> list[Incoming[Any]] | None:
            self.poll()
            found = [i for i in self.items if where(i)]
            return found if len(found) >= count else None

        return cast("list[Incoming[Any]]", wait_for(enough, timeout_s, f"{count} {self.event} event(s)"))

    def close(self) -> None:
        """Leave the topic."""
        self.consumer.close()


class S3Server:
    """An S3 API server on loopback: moto's server mode (`python -m moto.server`) as a separate process.

    Clients reach it the way a user points Tuneline at S3, MinIO or any S3-compatible store: the standard
    `AWS_*` variables (`env`), which botocore (under s3fs) reads; nothing Tuneline-specific."""

    BUCKET = "tuneline-test"

    def __init__(self, log: Path) -> None:
        self.port = free_ports()[0]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "tuneline-test", "AWS_SECRET_ACCESS_KEY": "tuneline-test",
                    "AWS_DEFAULT_REGION": "us-east-1"}
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.proc = subprocess.Popen(python("-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)), cwd=REPO,
                                     stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(self._answering, 60, f"the S3 server on {self.endpoint} (log: {log})")
        except BaseException:
            self.stop()
            raise

    def _answering(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the S3 server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def root(self, prefix: str, bucket: str = BUCKET) -> str:
        """An artifact root (TUNELINE_ARTIFACT_ROOT) under a prefix of a bucket."""
        return f"s3://{bucket}/{prefix}"

    def stop(self) -> None:
        """Stop the server process (by its own pid): nothing is left listening."""
        stop_process(self.proc)


def adapter_tree(folder: Path, row: bytes) -> list[tuple[str, str | Path]]:
    """A small adapter folder whose two files both hold `row` (a marker to search stored bytes for), as `put_tree` takes it."""
    folder.mkdir()
    (folder / "adapter_config.json").write_bytes(b'{"r": 8, "note": "' + row + b'"}')
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(3000) + row)
    return [("adapter_config.json", folder / "adapter_config.json"), ("adapter_model.safetensors", folder / "adapter_model.safetensors")]


def ledger_head_status(settings: Settings) -> grpc.StatusCode:
    """What the monitor's LedgerHead answers a client with these settings' TLS and token (OK or the error's code)."""
    with grpc_tls.channel(settings, settings.monitor_address) as ch:
        try:
            q_grpc.QueryStub(ch).LedgerHead(q.LedgerHeadRequest(), metadata=grpc_tls.bearer(settings), timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()


def local_metrics() -> dict[str, float]:
    """This process's metrics as Prometheus would scrape them: {"name{label=value,...}": value}.

    Installs the meter provider on first use (no listener); read with prometheus_client's own parser.
    """
    from prometheus_client import REGISTRY, generate_latest

    from services.kernel.metrics import setup_metrics

    setup_metrics("tests", Settings(metrics_address=""))
    return parse_metrics(generate_latest(REGISTRY).decode())


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as {"name{label=value,...}": value}, labels sorted, the OpenTelemetry scope labels left out."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if not k.startswith("otel_scope_"))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def metric_total(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of a series' samples whose labels include `labels` (e.g. every status of one goal)."""
    want = {f"{k}={v}" for k, v in labels.items()}
    total = 0.0
    for key, value in samples.items():
        series, _, rest = key.partition("{")
        if series == name and want <= set(rest.rstrip("}").split(",")):
            total += value
    return total


SERVICES = ("ingest", "trainer", "evaluator", "deployer", "monitor")
_SERIES = re.compile(r"\b((?:tuneline|rpc|messaging)_[a-z0-9_]+)")


def catalogue() -> dict[str, set[str]]:
    """docs/metrics.md's Prometheus series by the service that exports them ("every consumer" / "every outbox
    relay": all five)."""
    out: dict[str, set[str]] = {s: set() for s in SERVICES}
    for line in (REPO / "docs" / "metrics.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and _SERIES.fullmatch(cells[1]):
            for service in SERVICES if cells[5].startswith("every") else (cells[5],):
                out[service].add(cells[1])
    return out


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the Grafana dashboard's panels and of the Prometheus alert rules in deploy/."""
    import yaml

    def targets(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["expr"]] if isinstance(node.get("expr"), str) else []
            return found + [e for v in node.values() for e in targets(v)]
        return [e for v in node for e in targets(v)] if isinstance(node, list) else []

    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules.yaml").read_text())
    return targets(json.loads((REPO / "deploy" / "grafana" / "tuneline.json").read_text())) + targets(rules)


def series_in(expr: str) -> set[str]:
    """The Tuneline series a PromQL expression reads, without the histogram and counter suffixes."""
    # Label names (grouping clauses, matchers) are not series.
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\{[^}]*\}", " ", expr)
    return {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in _SERIES.findall(bare)}


ALERTMANAGER_SCHEMA = json.loads((REPO / "tests" / "golden" / "alerting" / "alertmanager-webhook.schema.json").read_text())


class AlertSink:
    """A webhook receiver on loopback that keeps every JSON body posted to it (an Alertmanager stand-in)."""

    def __init__(self, port: int = 0) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
