"""`tuneline lineage` over the gRPC Query API: the full chain from a request id, and loud failure on tampering."""

from __future__ import annotations

import grpc
import pytest
from tuneline.events.v1 import events_pb2 as ev
from tuneline.monitor.v1 import query_pb2 as q
from tuneline.monitor.v1 import query_pb2_grpc as q_grpc

from services.kernel.blobs import BlobStore
from services.kernel.store import Store
from services.monitor import audit
from services.monitor.entrypoints.grpc_server import QueryServer, QueryServicer
from services.monitor.lineage import Lineage
from services.monitor.settings import MonitorSettings
from services.monitor.store import MIGRATIONS

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path, unused_port=None):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = MonitorSettings(state_dir=tmp_path, monitor_address=f"127.0.0.1:{port}")
    store, blobs = Store.open(settings, "monitor", MIGRATIONS), BlobStore(str(tmp_path / "artifacts"))
    server = QueryServer(settings, QueryServicer(settings, store, Lineage(store, blobs)))
    server.start()
    yield settings, store, blobs
    server.stop()
    store.dispose()


def _chain(store, blobs, make):
    train, evalr = blobs.put_bytes(b"train-parquet"), blobs.put_bytes(b"eval-parquet")
    envelope, report = blobs.put_bytes(b'{"seed": 17}'), blobs.put_bytes(b"<html>report</html>", "text/html")
    weights = blobs.root + "/../head.safetensors"
    with open(weights, "wb") as f:
        f.write(b"weights")
    adapter_ref = blobs.put_tree([("head.safetensors", weights)])
    adapter = adapter_ref.digest
    published = make(ev.DatasetPublished(dataset_name="banking77", uri="/data/b77.csv", publisher="data-team"))
    msgs = [ev.DatasetRegistered(dataset_name="banking77", dataset_version="sha256:" + "d" * 64, train=train, eval=evalr,
                                 published_event_id=published.id),
            ev.RunFinished(run_id="run-1", status="succeeded", dataset_version="sha256:" + "d" * 64, envelope=envelope,
                           adapter=adapter_ref),
            ev.EvalPassed(outcome=ev.EvalOutcome(eval_id="eval-1", run_id="run-1", passed=True, report_html=report,
                                                 adapter=ev.ArtifactRef(digest=adapter))),
            ev.DeploymentStarted(deployment_id="dep-1", goal_name="banking77", adapter=ev.ArtifactRef(digest=adapter)),
            ev.InferenceLogged(request_id="req-1", adapter_digest=adapter, label="card_arrival", confidence=0.9),
            ev.FeedbackRecorded(feedback_id="fb-1", request_id="req-1", label="card_arrival", source="human_review",
                                recorded_by="support-review")]
    with store.session() as s:
        for inc in [published] + [make(m) for m in msgs]:
            audit.append_event(inc, s)
    return report


def _lineage(settings, ident):
    with grpc.insecure_channel(settings.monitor_address) as ch:
        return q_grpc.QueryStub(ch).Lineage(q.LineageRequest(id=ident), metadata=(("authorization", "Bearer tuneline-dev-token"),))


def test_lineage_of_a_request_reaches_the_publication_and_verifies(served, make_incoming):
    settings, store, blobs = served
    _chain(store, blobs, make_incoming)
    r = _lineage(settings, "req-1")
    assert [s.stage for s in r.steps] == ["published", "registered", "run", "evaluation", "deployment", "prediction", "feedback"]
    assert r.steps[-1].facts["recorded_by"] == "support-review", "the ground truth that came back is on the chain"
    assert r.complete and r.verified and not r.problems
    assert r.steps[0].facts["publisher"] == "data-team"


def test_lineage_fails_loudly_when_an_artifact_was_altered(served, make_incoming):
    settings, store, blobs = served
    report = _chain(store, blobs, make_incoming)
    with open(report.uri, "r+b") as f:
        f.write(b"X")
    r = _lineage(settings, "req-1")
    assert not r.verified and any(report.digest in p for p in r.problems)


def test_lineage_refuses_without_a_token(served):
    settings, _, _ = served
    with grpc.insecure_channel(settings.monitor_address) as ch, pytest.raises(grpc.RpcError) as err:
        q_grpc.QueryStub(ch).Lineage(q.LineageRequest(id="req-1"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _cli(monkeypatch, settings, *args):
    import typer
    from typer.testing import CliRunner

    from services.monitor.entrypoints.cli import register

    monkeypatch.setenv("TUNELINE_MONITOR_ADDRESS", settings.monitor_address)
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, list(args))


def test_cli_lineage_prints_the_chain_and_fails_loudly_on_tampering(served, make_incoming, monkeypatch):
    from services.kernel.errors import IntegrityError

    settings, store, blobs = served
    report = _chain(store, blobs, make_incoming)
    ok = _cli(monkeypatch, settings, "lineage", "req-1")
    assert ok.exit_code == 0 and "data-team" in ok.output and "complete and verified" in ok.output
    with open(report.uri, "r+b") as f:
        f.write(b"X")
    bad = _cli(monkeypatch, settings, "lineage", "req-1")
    assert bad.exit_code != 0 and isinstance(bad.exception, IntegrityError) and report.digest in str(bad.exception)


def test_cli_audit_verify_names_the_first_bad_record(served, make_incoming, monkeypatch):
    import sqlalchemy as sa

    from services.kernel.errors import IntegrityError

    settings, store, blobs = served
    _chain(store, blobs, make_incoming)
    assert _cli(monkeypatch, settings, "audit", "verify").exit_code == 0
    assert _cli(monkeypatch, settings, "audit", "head").output.startswith("7 sha256:")
    with store.session() as s:
        s.execute(sa.text("UPDATE monitor_ledger SET ce_type = 'tuneline.alert.raised.v1' WHERE seq = 3"))
    bad = _cli(monkeypatch, settings, "audit", "verify")
    assert isinstance(bad.exception, IntegrityError) and "first bad record 3" in str(bad.exception)


def test_the_query_api_over_mutual_tls_refuses_plaintext_and_strangers(tmp_path, make_incoming, monkeypatch):
    """TLS on the monitor like the deployer's: the CLI with the CA and a client certificate gets in; a
    plaintext client, a client without a certificate and one with a certificate of another CA do not."""
    from services.kernel import pki
    from tests.support import free_ports, ledger_head_status

    ca = pki.ensure_ca(tmp_path / "pki")
    server_pair, client_pair = pki.ensure_leaf(ca, tmp_path / "pki", "monitor"), pki.ensure_leaf(ca, tmp_path / "pki", "cli", client=True)
    stranger_ca = pki.ensure_ca(tmp_path / "other")
    stranger = pki.ensure_leaf(stranger_ca, tmp_path / "other", "cli", client=True)
    [port] = free_ports(1)
    settings = MonitorSettings(state_dir=tmp_path / "state", monitor_address=f"127.0.0.1:{port}", grpc_tls_cert=server_pair.cert,
                               grpc_tls_key=server_pair.key, grpc_tls_client_ca=ca.cert)
    store, blobs = Store.open(settings, "monitor", MIGRATIONS), BlobStore(str(tmp_path / "artifacts"))
    server = QueryServer(settings, QueryServicer(settings, store, Lineage(store, blobs)))
    server.start()
    try:
        _chain(store, blobs, make_incoming)
        client = settings.replace(grpc_tls_ca=ca.cert, grpc_tls_client_cert=client_pair.cert, grpc_tls_client_key=client_pair.key)

        assert ledger_head_status(client) == grpc.StatusCode.OK
        assert ledger_head_status(settings) == grpc.StatusCode.UNAVAILABLE  # plaintext to a TLS port
        assert ledger_head_status(client.replace(grpc_tls_client_cert=None, grpc_tls_client_key=None)) == grpc.StatusCode.UNAVAILABLE
        stranger_client = client.replace(grpc_tls_client_cert=stranger.cert, grpc_tls_client_key=stranger.key)
        assert ledger_head_status(stranger_client) == grpc.StatusCode.UNAVAILABLE
        for name, value in (("TUNELINE_GRPC_TLS_CA", ca.cert), ("TUNELINE_GRPC_TLS_CLIENT_CERT", client_pair.cert),
                            ("TUNELINE_GRPC_TLS_CLIENT_KEY", client_pair.key)):
            monkeypatch.setenv(name, str(value))
        ok = _cli(monkeypatch, settings, "lineage", "req-1")
        assert ok.exit_code == 0 and "complete and verified" in ok.output
    finally:
        server.stop()
        store.dispose()


def test_lineage_names_who_signed_each_recorded_decision(served, make_incoming):
    """The ledger keeps the headers as received; the lineage shows each step's signer."""
    import dataclasses

    settings, store, blobs = served
    _chain(store, blobs, make_incoming)
    verdict = make_incoming(ev.EvalPassed(outcome=ev.EvalOutcome(eval_id="eval-2", run_id="run-1", passed=True, goal_name="banking77",
                                                                 adapter=ev.ArtifactRef(digest="sha256:" + "a" * 64))))
    headers = tuple((k, v.encode() if isinstance(v, str) else v) for k, v in audit.cloud_event_headers(verdict))
    verdict = dataclasses.replace(verdict, raw_value=verdict.message.SerializeToString(),
                                  raw_headers=(*headers, ("tuneline-signer", b"evaluator"), ("tuneline-signature", b"c2ln")))
    with store.session() as s:
        audit.append_event(verdict, s)
    r = _lineage(settings, "sha256:" + "a" * 64)
    [step] = [s for s in r.steps if s.stage == "evaluation"]
    assert step.facts["signed_by"] == "evaluator" and step.facts["goal"] == "banking77"


def test_cli_alerts_lists_incidents_open_first_with_their_deliveries(served, monkeypatch):
    from rich.console import Console

    from services.monitor import alerting
    from services.monitor.domain.alerts import Alert

    settings, store, _ = served
    monkeypatch.setattr("services.monitor.entrypoints.cli.console", Console(width=300))
    sinks = alerting.sinks_from(["http://127.0.0.1:9/hook"], [])
    with store.session() as s:
        alerting.raise_alert(s, Alert("run_failed", "warning", "banking77", "run r-1 failed"), "a-0", sinks, 1_000)
        for i in range(3):
            alerting.raise_alert(s, Alert("drift", "critical", "banking77", "drift share 0.8", report_uri="file:///r.html",
                                          trace_id="ab" * 16), f"a-{i + 1}", sinks, 2_000 + i)
    listed = _cli(monkeypatch, settings, "alerts")
    assert listed.exit_code == 0, listed.output
    assert listed.output.index("drift share 0.8") < listed.output.index("run r-1 failed"), "the open incident first"
    assert "1 pending" in listed.output and "file:///r.html" in listed.output and "tuneline trace " + "ab" * 16 in listed.output
    only_open = _cli(monkeypatch, settings, "alerts", "--open")
    assert "drift share 0.8" in only_open.output and "run r-1 failed" not in only_open.output


def test_cli_drift_lists_windows_and_copies_the_newest_report_verified(served, monkeypatch):
    from rich.console import Console

    from services.kernel.errors import IntegrityError
    from services.monitor.store import WindowVerdictRow

    settings, store, blobs = served
    monkeypatch.setattr("services.monitor.entrypoints.cli.console", Console(width=300))
    monkeypatch.setenv("TUNELINE_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("TUNELINE_ARTIFACT_ROOT", blobs.root)
    report = blobs.put_bytes(b"<!doctype html><html>drift report</html>", "text/html")
    adapter = "sha256:" + "a" * 64
    with store.session() as s:
        for index, drifted in ((0, False), (1, True), (2, False)):
            s.add(WindowVerdictRow(goal_name="banking77", adapter_digest=adapter, index=index, drifted=drifted,
                                   drift_share=0.8 if drifted else 0.1, verdict_digest="sha256:" + "v" * 64, verdict_uri="v",
                                   report_digest=report.digest if drifted else "", report_uri=report.uri if drifted else "",
                                   span_ms=4000))
    listed = _cli(monkeypatch, settings, "drift", "banking77", "--path")
    assert listed.exit_code == 0, listed.output
    assert "80%" in listed.output and "10%" in listed.output
    copy = settings.state_dir / "reports" / "drift-banking77-aaaaaaaaaaaa-1.html"
    assert f"{copy}" in listed.output and copy.read_bytes() == b"<!doctype html><html>drift report</html>"
    with open(report.uri, "r+b") as f:
        f.write(b"X")
    tampered = _cli(monkeypatch, settings, "drift", "banking77", "--path")
    assert isinstance(tampered.exception, IntegrityError), "a report that does not match its digest is never copied"
    assert _cli(monkeypatch, settings, "drift", "nothing-here").output.startswith("no judged windows")
