"""The gRPC server on loopback: auth matrix (R28), hostile inputs and a flood (R29), health, reflection."""

import logging
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tuneline.serving.v1 import inference_pb2 as pb

from services.deployer.domain.routing import RoutingTable
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.pool import AdapterPool

pytestmark = pytest.mark.integration
PREDICT = "/tuneline.serving.v1.Inference/Predict"


@pytest.fixture
def running(tiny_base, adapters, serve, kit, tmp_path):
    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    digest, folder = adapters[0]
    pool.load(digest, folder)
    routing = RoutingTable()
    routing.set(kit.route(kit.slot(digest, folder)))
    config = ServingConfig(max_wait_ms=1.0, queue_capacity=8, grpc_threads=8, max_concurrent_rpcs=32)
    return serve(pool, routing, config=config)


def code_of(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def healthy(channel, service: str = "") -> bool:
    check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    serving: bool = check.status == health_pb2.HealthCheckResponse.SERVING  # grpc_health is untyped
    return serving


def test_a_prediction_carries_label_policy_and_provenance(running, adapters, kit):
    r = kit.ask(running.stub, "I lost my card", request_id="req-1", top_k=2)
    assert r.label in kit.LABELS and 0 < r.confidence <= 1 and len(r.top_k) == 2
    assert r.top_k[0].label == r.label and r.top_k[0].score == pytest.approx(r.confidence)
    assert (r.adapter_digest, r.variant, r.request_id) == (adapters[0][0], "champion", "req-1")
    assert r.dataset_version == "sha256:" + "d" * 64 and r.goal_version == "sha256:" + "e" * 64
    assert r.escalate == (r.confidence < 0.3)
    batch = running.stub.PredictBatch(pb.PredictBatchRequest(requests=[
        pb.PredictRequest(goal="banking", text=t) for t in ("refund please", "card lost", "balance?")]),
        metadata=kit.AUTH, timeout=30)
    assert len(batch.responses) == 3 and all(x.request_id for x in batch.responses)


def test_auth_matrix_and_audit(running, kit, caplog):
    request = pb.PredictRequest(goal="banking", text="hi")
    cases = {
        "none": (),
        "not bearer": (("authorization", kit.TOKEN),),
        "wrong": (("authorization", "Bearer not-the-token"),),
        "right": kit.AUTH,
    }
    with caplog.at_level(logging.WARNING, logger="tuneline.audit.auth"):
        codes = {name: code_of(lambda md=md: running.stub.Predict(request, metadata=md, timeout=10))
                 for name, md in cases.items()}
    assert codes == {"none": grpc.StatusCode.UNAUTHENTICATED, "not bearer": grpc.StatusCode.UNAUTHENTICATED,
                     "wrong": grpc.StatusCode.PERMISSION_DENIED, "right": grpc.StatusCode.OK}
    audits = [r.getMessage() for r in caplog.records if r.name == "tuneline.audit.auth"]
    assert len(audits) == 3 and all("Inference/Predict" in a and "peer=" in a for a in audits)
    assert not any("not-the-token" in a for a in audits)
    admin = code_of(lambda: running.stub.ListDeployments(pb.ListDeploymentsRequest(), timeout=10))
    assert admin == grpc.StatusCode.UNAUTHENTICATED  # refused before anyone looks for an Admin servicer


def test_health_and_reflection_need_no_token(running):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    assert healthy(running.channel) and healthy(running.channel, "tuneline.serving.v1.Inference")
    services = set(ProtoReflectionDescriptorDatabase(running.channel).get_services())
    assert {"tuneline.serving.v1.Inference", "grpc.health.v1.Health"} <= services


def test_hostile_inputs_get_clear_status_codes_and_the_server_stays_healthy(running, kit):
    raw = running.channel.unary_unary(PREDICT, request_serializer=None, response_deserializer=pb.PredictResponse.FromString)
    invalid_utf8 = b"\x0a\x07banking" + b"\x12\x04ab\xff\xfe"  # goal="banking", text=bytes that are not UTF-8

    def predict(text: str):
        return lambda: kit.ask(running.stub, text)

    codes = {
        "over 4 MiB": code_of(predict("a" * (5 << 20))),
        "empty": code_of(predict("")),
        "too long": code_of(predict("word " * 1000)),
        "invalid utf-8": code_of(lambda: raw(invalid_utf8, metadata=kit.AUTH, timeout=10)),
        "not protobuf": code_of(lambda: raw(b"\xff\xff\xff", metadata=kit.AUTH, timeout=10)),
        "zero-width": code_of(predict("card\u200blost")),
        "bidi": code_of(predict("abc \u202egnp.exe")),
        "nul": code_of(predict("card\x00lost")),
        "unknown goal": code_of(lambda: kit.ask(running.stub, "hi", goal="nobody")),
        "bad goal": code_of(lambda: kit.ask(running.stub, "hi", goal="../etc/passwd")),
        "top_k": code_of(lambda: kit.ask(running.stub, "hi", top_k=10_000)),
    }
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert codes == {"over 4 MiB": grpc.StatusCode.RESOURCE_EXHAUSTED, "empty": invalid, "too long": invalid,
                     "invalid utf-8": invalid, "not protobuf": invalid, "zero-width": invalid, "bidi": invalid,
                     "nul": invalid, "unknown goal": grpc.StatusCode.NOT_FOUND, "bad goal": invalid, "top_k": invalid}
    assert healthy(running.channel) and kit.ask(running.stub, "still fine").label


def test_invalid_input_message_says_what_is_wrong(running, kit):
    with pytest.raises(grpc.RpcError) as err:
        kit.ask(running.stub, "abc\u202edef")
    assert "bidi control U+202E" in err.value.details()


def test_a_flood_at_ten_times_the_served_rate_is_shed_not_crashed(running, kit):
    t0, served = time.perf_counter(), 0
    while time.perf_counter() - t0 < 1.0:
        kit.ask(running.stub, "how do I top up")
        served += 1
    rate = served / (time.perf_counter() - t0)
    n = int(min(3000, max(300, 10 * rate * 2)))  # ten times the measured rate for two seconds, sent at once
    request = pb.PredictRequest(goal="banking", text="flood of requests")
    futures = [running.stub.Predict.future(request, metadata=kit.AUTH, timeout=60) for _ in range(n)]
    codes = [f.code() for f in futures]  # each call has its own 60 s deadline
    counts = {c: codes.count(c) for c in set(codes)}
    assert set(counts) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, counts
    assert counts.get(grpc.StatusCode.RESOURCE_EXHAUSTED, 0) > 0 and counts.get(grpc.StatusCode.OK, 0) > 0
    assert healthy(running.channel) and kit.ask(running.stub, "after the flood").label
    print(f"flood: served rate {rate:.0f}/s, sent {n} at once: {({c.name: k for c, k in counts.items()})}")


def test_the_development_token_is_refused_on_a_public_bind(tiny_base, adapters, kit, tmp_path):
    from services.deployer.entrypoints.grpc_server import build_server
    from services.kernel.errors import ConfigError
    from services.kernel.settings import Settings

    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    public = Settings(state_dir=tmp_path / "state", deployer_address="0.0.0.0:0")   # the default tokens
    with pytest.raises(ConfigError, match="development token"):
        build_server(public, RoutingTable(), pool, kit.Recorder(), kit.Recorder(), config=ServingConfig())
    own = public.replace(grpc_tokens=["a-long-random-token"])
    server = build_server(own, RoutingTable(), pool, kit.Recorder(), kit.Recorder(), config=ServingConfig())
    server.start()
    try:
        assert server.port > 0
    finally:
        server.stop(0)
