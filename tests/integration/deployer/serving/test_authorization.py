"""The authorization matrix (RELIABILITY.md R28, extended): scoped, tenant-bound, expiring tokens against
the real deployer and monitor gRPC servers. Every refusal is audited; nothing unauthorised succeeds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import yaml
from tuneline.events.v1 import events_pb2 as ev
from tuneline.monitor.v1 import query_pb2 as q
from tuneline.monitor.v1 import query_pb2_grpc as q_grpc
from tuneline.serving.v1 import inference_pb2 as pb

from services.deployer.controller import Controller
from services.deployer.domain.routing import RoutingTable
from services.deployer.entrypoints.admin import AdminServicer
from services.deployer.entrypoints.grpc_server import InferenceClient, build_server
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.pool import AdapterPool
from services.deployer.store import MIGRATIONS as DEPLOYER_MIGRATIONS
from services.kernel import credentials
from services.kernel.blobs import BlobStore
from services.kernel.events import Incoming, M, event_name_of
from services.kernel.goal import parse_goal
from services.kernel.goals import TenantDirectory
from services.kernel.grpc_auth import Guard, audit_path
from services.kernel.ids import uuid7
from services.kernel.settings import REPO_ROOT
from services.kernel.store import Store
from services.monitor import audit, handlers
from services.monitor.entrypoints.grpc_server import QueryServer, QueryServicer
from services.monitor.lineage import Lineage
from services.monitor.settings import MonitorSettings
from services.monitor.store import MIGRATIONS as MONITOR_MIGRATIONS
from tests.support import free_ports

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
METHODS = ("Predict", "PredictBatch", "ListDeployments", "Rollback", "Lineage", "VerifyLedger")
OK, UNAUTH, DENIED = grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED


def _goal(name: str, tenant: str):
    data = yaml.safe_load((REPO_ROOT / "goals" / "banking77.yaml").read_text())
    return parse_goal({**data, "name": name, "tenant": tenant})


def _incoming(message: M, subject: str = "banking") -> Incoming[M]:
    name = event_name_of(message)
    return Incoming(id=uuid7(), type=name, source="test", time=datetime.now(UTC), subject=subject, message=message,
                    topic=f"tuneline.{name}", partition=0, offset=0)


@pytest.fixture
def servers(tiny_base, adapters, serving_settings, kit, tmp_path):
    """A deployer (Inference + Admin) and a monitor (Query) on one state folder, with issued tokens."""
    dep_port, mon_port = free_ports(2)
    settings = MonitorSettings(**{**serving_settings.model_dump(), "grpc_tokens": [], "deployer_address": f"127.0.0.1:{dep_port}",
                                  "monitor_address": f"127.0.0.1:{mon_port}"})
    path = credentials.credentials_path(settings)
    tokens = {name: credentials.issue(path, name, tenant, scopes, expires, NOW)[0] for name, tenant, scopes, expires in (
        ("acme-predict", "acme", ["predict"], None),
        ("acme-all", "acme", list(credentials.SCOPES), None),
        ("acme-expired", "acme", list(credentials.SCOPES), NOW - timedelta(seconds=1)),
        ("globex-all", "globex", list(credentials.SCOPES), None),
        ("platform-audit", "*", ["audit"], None))}
    goal = _goal("banking", "acme")
    tenants = TenantDirectory()
    tenants.note(goal)
    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    pool.load(*adapters[0])
    routing = RoutingTable()
    routing.set(kit.route(kit.slot(*adapters[0])))
    store = Store.open(settings, "deployer", DEPLOYER_MIGRATIONS)
    controller = Controller(store, BlobStore(str(tmp_path / "artifacts")), pool, routing, tmp_path / "adapters")
    guard, recorder = Guard(settings, "deployer"), kit.Recorder()
    deployer = build_server(settings, routing, pool, recorder, recorder, config=ServingConfig(max_wait_ms=1.0),
                            admin_servicer=AdminServicer(controller, guard=guard, tenants=tenants), guard=guard, tenants=tenants)
    deployer.start()
    mstore = Store.open(settings, "monitor", MONITOR_MIGRATIONS)
    with mstore.session() as s:
        handlers.on_goal_applied(_incoming(ev.GoalApplied(goal_name=goal.name, goal_version=goal.version,
                                                          goal_json=goal.canonical_json())), s)
        audit.append_event(_incoming(ev.InferenceLogged(request_id="req-1", goal_name="banking", adapter_digest=adapters[0][0],
                                                        label="refund", confidence=0.9)), s)
    monitor = QueryServer(settings, QueryServicer(settings, mstore, Lineage(mstore, BlobStore(str(tmp_path / "artifacts")))))
    monitor.start()
    channels = [grpc.insecure_channel(settings.deployer_address), grpc.insecure_channel(settings.monitor_address)]
    yield settings, tokens, InferenceClient(channels[0]), q_grpc.QueryStub(channels[1]), recorder
    for ch in channels:
        ch.close()
    deployer.stop(1.0)
    monitor.stop()
    store.dispose()
    mstore.dispose()


def _call(inference: InferenceClient, query, method: str, token: str | None) -> grpc.StatusCode:
    meta = (("authorization", f"Bearer {token}"),) if token is not None else ()
    ask = pb.PredictRequest(goal="banking", text="I want my money back")
    calls = {"Predict": lambda: inference.Predict(ask, metadata=meta, timeout=30),
             "PredictBatch": lambda: inference.PredictBatch(pb.PredictBatchRequest(requests=[ask, ask]), metadata=meta, timeout=30),
             "ListDeployments": lambda: inference.ListDeployments(pb.ListDeploymentsRequest(goal="banking"), metadata=meta, timeout=10),
             "Rollback": lambda: inference.Rollback(pb.RollbackRequest(goal="banking", reason="test"), metadata=meta, timeout=10),
             "Lineage": lambda: query.Lineage(q.LineageRequest(id="req-1"), metadata=meta, timeout=10),
             "VerifyLedger": lambda: query.VerifyLedger(q.VerifyLedgerRequest(), metadata=meta, timeout=10)}
    try:
        calls[method]()
        return OK
    except grpc.RpcError as err:
        return err.code()


def test_the_authorization_matrix_has_no_unauthorised_success_and_audits_every_refusal(servers):
    settings, tokens, inference, query, _ = servers
    callers = {"no token": None, "wrong token": "tl_" + "x" * 43, "expired token": tokens["acme-expired"],
               "other tenant's token": tokens["globex-all"], "predict-only token": tokens["acme-predict"]}
    expected = {"no token": dict.fromkeys(METHODS, UNAUTH), "wrong token": dict.fromkeys(METHODS, DENIED),
                "expired token": dict.fromkeys(METHODS, UNAUTH), "other tenant's token": dict.fromkeys(METHODS, DENIED),
                "predict-only token": {**dict.fromkeys(METHODS, DENIED), "Predict": OK, "PredictBatch": OK}}
    seen = {who: {m: _call(inference, query, m, token) for m in METHODS} for who, token in callers.items()}
    assert seen == expected
    refusals = [(who, m) for who, row in seen.items() for m, code in row.items() if code != OK]
    assert len(refusals) == 28
    audited = [json.loads(line) for line in audit_path(settings).read_text().splitlines()]
    assert len(audited) == len(refusals)
    assert sorted(a["method"].rsplit("/", 1)[-1] for a in audited) == sorted(m for _, m in refusals)
    assert not any(t in audit_path(settings).read_text() for t in tokens.values())
    named = {a["principal"] for a in audited}
    assert {"acme-expired", "globex-all", "acme-predict"} <= named


def test_the_right_credentials_pass_the_guard(servers):
    """The controls: each method answers (or fails for a reason other than authorization) for its own scope."""
    _, tokens, inference, query, _ = servers
    assert _call(inference, query, "Predict", tokens["acme-all"]) == OK
    # No rollout exists: the guard let the call through to the controller, which has nothing to show.
    assert _call(inference, query, "ListDeployments", tokens["acme-all"]) == grpc.StatusCode.NOT_FOUND
    assert _call(inference, query, "Rollback", tokens["acme-all"]) == grpc.StatusCode.NOT_FOUND
    assert _call(inference, query, "Lineage", tokens["acme-all"]) == OK
    assert _call(inference, query, "VerifyLedger", tokens["platform-audit"]) == OK
    # A tenant's auditor cannot tell an unknown id from another tenant's.
    code = None
    try:
        query.Lineage(q.LineageRequest(id="no-such-request"), metadata=(("authorization", f"Bearer {tokens['acme-all']}"),))
    except grpc.RpcError as err:
        code = err.code()
    assert code == DENIED


def test_the_goals_tenant_is_logged_not_the_clients_claim(servers):
    _, tokens, inference, _, recorder = servers
    meta = (("authorization", f"Bearer {tokens['acme-predict']}"),)
    inference.Predict(pb.PredictRequest(goal="banking", text="hi"), metadata=meta, timeout=30)
    assert [e.tenant for e in recorder.entries] == ["acme"]
    with pytest.raises(grpc.RpcError) as err:
        inference.Predict(pb.PredictRequest(goal="banking", text="hi", tenant="globex"), metadata=meta, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "acme" in err.value.details()
