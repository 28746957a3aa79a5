"""Admin gRPC (ListDeployments, Rollback) over a real loopback server against the real controller."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from tuneline.serving.v1 import inference_pb2 as pb
from tuneline.serving.v1 import inference_pb2_grpc as pb_grpc

from services.deployer.entrypoints.admin import AdminServicer
from services.kernel.outbox import emit

pytestmark = pytest.mark.integration


def test_list_and_rollback_over_grpc(world) -> None:
    for n in (1, 2):
        with world.store.session() as s:
            for out in world.on_eval_passed(world.incoming(world.passed(world.adapter(n))), s, controller=world.controller):
                emit(s, out)
    server = grpc.server(ThreadPoolExecutor(2))
    pb_grpc.add_AdminServicer_to_server(AdminServicer(world.controller, lambda: 7), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            admin = pb_grpc.AdminStub(ch)
            listed = admin.ListDeployments(pb.ListDeploymentsRequest())
            [d] = listed.deployments
            assert d.state == "canary" and [(s.role, s.traffic_percent) for s in d.slots] == [("champion", 90), ("canary", 10)]
            assert listed.unlogged_predictions == 7
            back = admin.Rollback(pb.RollbackRequest(goal="g", reason="ops"))
            assert back.restored_digest == d.slots[0].adapter_digest and back.decision_to_zero_ms < 1000
            with pytest.raises(grpc.RpcError) as err:
                admin.Rollback(pb.RollbackRequest(goal="g"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            with pytest.raises(grpc.RpcError) as err:
                admin.ListDeployments(pb.ListDeploymentsRequest(goal="nope"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop(0)
