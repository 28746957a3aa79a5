"""The deployer's metrics as Prometheus reads them, after real gRPC traffic on a real (tiny) model.

Every figure is a difference across the traffic the test sent, read with prometheus_client's own parser.
"""

import grpc
import pytest
from tuneline.serving.v1 import inference_pb2 as pb

from services.deployer.domain.routing import RoutingTable
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.pool import AdapterPool
from services.kernel.metrics import short_digest
from tests.support import local_metrics, metric_total

pytestmark = pytest.mark.integration
PREDICT = "tuneline.serving.v1.Inference/Predict"


@pytest.fixture
def running(tiny_base, adapters, serve, kit, tmp_path):
    local_metrics()  # the meter provider is installed before anything is recorded
    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    (champion, champion_dir), (canary, canary_dir) = adapters[0], adapters[1]
    pool.load(champion, champion_dir)
    pool.load(canary, canary_dir)
    routing = RoutingTable()
    routing.set(kit.route(kit.slot(champion, champion_dir), kit.slot(canary, canary_dir, "canary", 30), mode="canary"))
    return serve(pool, routing, config=ServingConfig(max_wait_ms=1.0))


def test_predictions_errors_and_split_are_counted_by_goal_adapter_variant_and_status(running, adapters, kit):
    before = local_metrics()
    answers = [kit.ask(running.stub, f"where is my card {i}", request_id=f"m-{i}") for i in range(20)]
    batch = running.stub.PredictBatch(pb.PredictBatchRequest(requests=[pb.PredictRequest(goal="banking", text=f"t{i}")
                                                                        for i in range(3)]), metadata=kit.AUTH, timeout=30)
    with pytest.raises(grpc.RpcError) as missing:
        kit.ask(running.stub, goal="nothing-here")
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    after = local_metrics()

    def delta(name, **labels):
        return metric_total(after, name, **labels) - metric_total(before, name, **labels)

    served = "tuneline_serving_request_duration_seconds_count"
    by_variant = {v: sum(1 for a in [*answers, *batch.responses] if a.variant == v) for v in ("champion", "canary")}
    assert by_variant["canary"] > 0, "30 % of 23 stable request ids: some go to the canary"
    for (digest, _), variant in zip(adapters[:2], ("champion", "canary"), strict=True):
        assert delta(served, goal="banking", adapter=short_digest(digest), variant=variant, status="OK") == by_variant[variant]
    assert delta(served, goal="banking") == 23, "each prediction of a batch call counts once"
    calls = "rpc_server_call_duration_seconds_count"
    assert delta(calls, rpc_method=PREDICT, rpc_grpc_status_code="0") == 20
    assert delta(calls, rpc_method="tuneline.serving.v1.Inference/PredictBatch", rpc_grpc_status_code="0") == 1
    assert delta(calls, rpc_method=PREDICT, rpc_grpc_status_code=str(grpc.StatusCode.NOT_FOUND.value[0])) == 1
    assert delta("tuneline_serving_batch_size_sum") == 23, "every text ran in some batch"
    shares = {v: after[k] for k in after for v in ("champion", "canary")
              if k.startswith("tuneline_rollout_traffic_share{") and f"variant={v}" in k}
    assert shares == {"champion": pytest.approx(0.7), "canary": pytest.approx(0.3)}
    assert metric_total(after, "tuneline_serving_queue_depth") == 0, "nothing waits once every call was answered"


def test_a_full_queue_is_counted_as_a_refusal(tiny_base, adapters, serve, kit, tmp_path):
    local_metrics()
    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    digest, folder = adapters[0]
    pool.load(digest, folder)
    routing = RoutingTable()
    routing.set(kit.route(kit.slot(digest, folder)))
    running = serve(pool, routing, config=ServingConfig(max_wait_ms=1.0, queue_capacity=1, inference_workers=1))
    before = metric_total(local_metrics(), "tuneline_serving_refusals_total", reason="queue_full")
    futures = [running.stub.Predict.future(pb.PredictRequest(goal="banking", text="x " * 200), metadata=kit.AUTH, timeout=30)
               for _ in range(32)]
    codes = [f.code() for f in futures]
    refused = codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert refused > 0, "32 concurrent calls on a queue of one: some are refused"
    assert metric_total(local_metrics(), "tuneline_serving_refusals_total", reason="queue_full") - before == refused
