"""The inference log against the real broker, and the server serving on while Kafka is unreachable."""

import time
import uuid
from typing import cast

import grpc
import pytest
from confluent_kafka import Consumer, Message
from google.protobuf.message import Message as ProtoMessage
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tuneline.events.v1 import events_pb2 as ev
from tuneline.serving.v1 import inference_pb2 as pb

from services.deployer.domain.routing import GoalRoute, RoutingTable
from services.deployer.entrypoints.grpc_server import INFERENCE_LOG_HEALTH
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.inference_log import KafkaInferenceLog
from services.deployer.serving.pool import AdapterPool
from services.kernel.events import Incoming, decode

pytestmark = pytest.mark.integration


def consume(settings, n: int, deadline_s: float = 60) -> list[Message]:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": settings.group("serving-test"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([settings.topic("inference.logged")])
    got: list[Message] = []
    end = time.monotonic() + deadline_s
    try:
        while len(got) < n and time.monotonic() < end:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
    finally:
        consumer.close()
    return got


def logged(e: Incoming[ProtoMessage]) -> ev.InferenceLogged:
    """The event's message, which must be an inference.logged."""
    assert isinstance(e.message, ev.InferenceLogged), e.type
    return e.message


@pytest.fixture
def pool(tiny_base, adapters, tmp_path):
    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    pool.load(*adapters[0])
    return pool


def test_every_prediction_is_logged_as_a_cloudevent_with_features(settings, pool, adapters, serve, kit):
    digest, folder = adapters[0]
    routing = RoutingTable()
    routing.set(kit.route(kit.slot(digest, folder)))
    routing.set(GoalRoute("chatty", kit.slot(digest, folder), None, "none", 0.3, frozenset(), True))
    config = ServingConfig(max_wait_ms=1.0)
    log = KafkaInferenceLog(settings, config)
    running = serve(pool, routing, config=config, log_sink=log)
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    for i in range(10):
        kit.ask(running.stub, f"quiet question {i}", request_id=f"q{i}")
    running.stub.Predict(pb.PredictRequest(goal="chatty", text="say it out loud to jane.doe@example.com", request_id="loud"),
                         metadata=(*kit.AUTH, ("traceparent", traceparent)), timeout=30)
    records = consume(settings, 11)
    # A consumed record's headers are (str, bytes) pairs and its topic is set; the stubs type the produce side's.
    decoded = [decode(m.value(), cast("list[tuple[str, bytes]] | None", m.headers()), topic=cast(str, m.topic())) for m in records]
    events = {logged(e).request_id: e for e in decoded}
    assert len(events) == 11 and log.unlogged() == 0
    quiet, loud = events["q3"], events["loud"]
    m = logged(quiet)
    assert (quiet.type, quiet.subject, m.goal_name) == ("inference.logged", "banking", "banking")
    assert (m.adapter_digest, m.variant, m.text) == (digest, "champion", "")
    assert len(m.embedding_projection) == 8 and m.token_count > 2 and m.text_length == len("quiet question 3")
    assert 0 <= m.margin <= m.confidence <= 1 and m.label in kit.LABELS and m.latency_ms > 0
    assert logged(loud).text == "say it out loud to <EMAIL>", "logged text is PII-scrubbed"
    assert loud.traceparent.split("-")[1] == traceparent.split("-")[1]  # the client's trace continues in the log


def test_kafka_down_the_server_keeps_serving_and_counts_unlogged(offline_settings, pool, adapters, serve, kit):
    digest, folder = adapters[0]
    routing = RoutingTable()
    routing.set(kit.route(kit.slot(digest, folder)))
    config = ServingConfig(max_wait_ms=1.0, log_delivery_timeout_ms=1000)
    settings = offline_settings.replace(grpc_tokens=[kit.TOKEN], deployer_address="127.0.0.1:0")
    log = KafkaInferenceLog(settings, config)
    running = serve(pool, routing, config=config, log_sink=log)
    answered = sum(1 for i in range(30) if kit.ask(running.stub, f"question {i}").label)
    end = time.monotonic() + 30
    while log.unlogged() < 30 and time.monotonic() < end:
        time.sleep(0.05)
    health = health_pb2_grpc.HealthStub(running.channel)

    def status(service: str) -> int:
        serving_status: int = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status  # untyped grpc_health
        return serving_status

    while status(INFERENCE_LOG_HEALTH) != health_pb2.HealthCheckResponse.NOT_SERVING and time.monotonic() < end:
        time.sleep(0.05)
    assert answered == 30 and log.unlogged() == 30 and running.server.stats().unlogged == 30
    assert status("") == health_pb2.HealthCheckResponse.SERVING
    assert status(INFERENCE_LOG_HEALTH) == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.RpcError):  # the log's health is its own service name, never the serving status
        health.Check(health_pb2.HealthCheckRequest(service="no-such-service"), timeout=10)
