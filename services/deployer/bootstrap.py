"""Wiring of the deployer process: store, blobs, pool, routing, controller, gRPC server, consumers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol

from services.deployer import handlers
from services.deployer.control.traffic import AdapterLoader
from services.deployer.controller import Controller
from services.deployer.domain.routing import RoutingTable
from services.deployer.entrypoints.admin import AdminServicer
from services.deployer.settings import DeployerSettings
from services.deployer.store import MIGRATIONS, SERVICE
from services.kernel.artifact_signing import ArtifactVerifier
from services.kernel.blobs import BlobStore
from services.kernel.bus.consumer import Handler, Subscription
from services.kernel.events import Outgoing
from services.kernel.goals import TenantDirectory
from services.kernel.grpc_auth import Guard
from services.kernel.runtime import ServiceRuntime
from services.kernel.settings import Settings
from services.kernel.store import Store

if TYPE_CHECKING:
    # Imported for annotations only: build() imports the serving side (Kafka, torch) when it runs.
    from services.deployer.entrypoints.grpc_server import InferenceServer, ServingPool
    from services.deployer.serving.inference_log import LogSink

    class DeployerPool(AdapterLoader, ServingPool, Protocol):
        """The pool as the deployer uses it: the controller loads and unloads adapters, the server serves them."""


CONSUMER = "deployer"


@dataclass
class Deployer:
    """The parts of a running deployer (tests reach into them)."""

    settings: DeployerSettings
    store: Store
    routing: RoutingTable
    controller: Controller
    server: InferenceServer
    runtime: ServiceRuntime


class _Started:
    """Starts the controller (restoring rollouts) before the server answers, stops it after."""

    def __init__(self, controller: Controller, server: InferenceServer) -> None:
        self.controller, self.server = controller, server
        self._unobserve: list[Callable[[], None]] = []

    def start(self) -> None:
        from services.deployer.serving import metrics

        self.controller.start()
        self.server.start()
        self._unobserve = [metrics.STEP.add(self._steps)]

    def stop(self) -> None:
        for unobserve in self._unobserve:
            unobserve()
        self.server.stop()
        self.controller.stop()

    def _steps(self) -> list[tuple[float, dict[str, str]]]:
        """Each goal's canary step, from 1 (0 when no canary is in progress)."""
        return [(r.step_index + 1 if r.state == "canary" else 0, {"goal": r.goal}) for r in self.controller.rollouts()]


def subscriptions(controller: Controller, tenants: TenantDirectory | None = None,
                  artifacts: ArtifactVerifier | None = None) -> list[Subscription]:
    """The events the deployer consumes and their handlers (artifact keys from the environment's settings by default)."""
    def bind(fn: Callable[..., list[Outgoing]]) -> Handler:
        return partial(fn, controller=controller)

    on_goal = partial(handlers.on_goal_applied, controller=controller, tenants=tenants or TenantDirectory())
    on_passed = partial(handlers.on_eval_passed, controller=controller, artifacts=artifacts or ArtifactVerifier(Settings()))
    return [Subscription("goal.applied", on_goal, CONSUMER),
            Subscription("eval.passed", on_passed, CONSUMER),
            Subscription("rollback.requested", bind(handlers.on_rollback_requested), CONSUMER),
            Subscription("drift.detected", bind(handlers.on_drift_detected), CONSUMER)]


def build(settings: DeployerSettings | None = None, pool: DeployerPool | None = None,
          log_sink: LogSink | None = None) -> Deployer:
    """Build the whole deployer; nothing runs until `runtime.run()` (or the server/controller start)."""
    from services.deployer.entrypoints.grpc_server import build_server
    from services.deployer.serving.inference_log import KafkaInferenceLog
    from services.deployer.serving.pool import AdapterPool

    settings = settings or DeployerSettings()
    if settings.serving.torch_threads:
        import torch

        torch.set_num_threads(settings.serving.torch_threads)
    store = Store.open(settings, SERVICE, MIGRATIONS)
    pool = pool or AdapterPool(settings.base_model, settings.serving.device, settings.path("pool", "x").parent)
    routing = RoutingTable()
    controller = Controller(store, BlobStore.from_settings(settings), pool, routing,
                            settings.path("adapters", "x").parent)
    log_sink = log_sink or KafkaInferenceLog(settings, settings.serving)
    with store.session() as session:
        tenants = TenantDirectory().load(session)
    guard = Guard(settings, SERVICE)
    admin = AdminServicer(controller, log_sink.unlogged, guard, tenants)
    server = build_server(settings, routing, pool, controller, log_sink, admin_servicer=admin, guard=guard, tenants=tenants)
    runtime = ServiceRuntime(SERVICE, settings, store, subscriptions(controller, tenants, ArtifactVerifier(settings)),
                             background=[_Started(controller, server)])
    return Deployer(settings, store, routing, controller, server, runtime)


def run() -> None:
    """`tuneline deployer run`: serve and roll out until SIGTERM."""
    build().runtime.run()
