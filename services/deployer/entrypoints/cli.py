"""`tuneline deployer run`, `tuneline deployments [GOAL]`, `tuneline deployments rollback|approve|reject GOAL`,
`tuneline predict GOAL TEXT`: the user's commands, talking gRPC to the deployer with the bearer token."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
import typer
from rich.console import Console
from rich.table import Table
from tuneline.serving.v1 import inference_pb2 as pb
from tuneline.serving.v1 import inference_pb2_grpc as pb_grpc

from services.kernel import grpc_tls
from services.kernel.errors import ConfigError, IllegalTransition, NotFound, TransientError, TunelineError
from services.kernel.ids import short

console = Console()
T = TypeVar("T")


def _call(rpc: Callable[[grpc.Channel], Callable[..., T]], request: object) -> T:
    from services.deployer.settings import DeployerSettings

    settings = DeployerSettings()
    with grpc_tls.channel(settings, settings.deployer_address) as channel:
        try:
            return rpc(channel)(request, metadata=grpc_tls.bearer(settings), timeout=settings.client_timeout_s)
        except grpc.RpcError as err:
            raise _error(err, settings.deployer_address) from None


def _error(err: grpc.RpcError, address: str) -> TunelineError:
    code, detail = err.code(), err.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return TransientError(f"the deployer at {address} is not reachable",
                              hint="start it with `tuneline deployer run` (or `tuneline up`)")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return ConfigError(f"the deployer refused the credential: {detail}", hint="set TUNELINE_GRPC_TOKEN")
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(detail, hint="list deployed goals with `tuneline deployments`")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return IllegalTransition(detail)
    return TunelineError(f"{code.name}: {detail}")


def run() -> None:
    """Run the deployer: gRPC inference, rollouts, rollbacks (foreground, until Ctrl-C)."""
    from services.deployer.bootstrap import run as run_deployer

    run_deployer()


ACTIONS = ("rollback", "approve", "reject", "hold", "resume")
# What each decision of a person did, as the CLI says it.
DONE = {"approve": "approved: its rollout started", "reject": "rejected: it will never serve",
        "hold": "held at its current step (guards still on)", "resume": "resumed"}


def deployments(goal: str = typer.Argument("", help="a goal, or an action: `rollback|approve|reject|hold|resume GOAL`"),
                target: str = typer.Argument("", help="the goal the action is about"),
                adapter: str = typer.Argument("", help="approve/reject/hold/resume: the candidate's digest (default: "
                                                       "whichever it is)"),
                reason: str = typer.Option("", help="why (goes into the event and the ledger)")) -> None:
    """Show deployments (all goals, or one); `rollback GOAL` takes its canary out of traffic; `approve GOAL` starts
    the rollout of the adapter waiting for approval (rollout.approval: required), `reject GOAL` ends it;
    `hold GOAL` freezes a rollout at its current step, `resume GOAL` lets it continue."""
    if goal in ACTIONS:
        if not target:
            raise ConfigError(f"name the goal to {goal}", hint=f"tuneline deployments {goal} GOAL")
        if goal == "rollback":
            return _rollback(target, reason or "manual rollback from the CLI")
        return _review(goal, target, adapter, reason)
    reply: pb.ListDeploymentsResponse = _call(
        lambda c: pb_grpc.AdminStub(c).ListDeployments,  # type: ignore[no-untyped-call]  # generated stub: no .pyi for *_pb2_grpc
        pb.ListDeploymentsRequest(goal=goal))
    table = Table(title="deployments")
    for col in ("goal", "state", "strategy", "role", "adapter", "traffic", "deployment", "step", "step requests"):
        table.add_column(col)
    for d in reply.deployments:
        for i, s in enumerate(d.slots):
            first = i == 0
            table.add_row(d.goal if first else "", d.state if first else "", d.strategy if first else "", s.role,
                          short(s.adapter_digest), f"{s.traffic_percent}%", short(s.deployment_id, 8),
                          str(d.step_index) if first else "", str(d.step_requests) if first else "")
    console.print(table if reply.deployments else "nothing deployed yet")
    for d in reply.deployments:
        if d.held:
            console.print(f"[yellow]{d.goal}: held by {d.held_by} at step {d.step_index}[/] "
                          f"(`tuneline deployments resume {d.goal}`)")
    if reply.unlogged_predictions:
        console.print(f"[yellow]{reply.unlogged_predictions} predictions could not be logged to Kafka[/]")


def _rollback(goal: str, reason: str) -> None:
    reply: pb.RollbackResponse = _call(
        lambda c: pb_grpc.AdminStub(c).Rollback,  # type: ignore[no-untyped-call]  # generated stub: no .pyi for *_pb2_grpc
        pb.RollbackRequest(goal=goal, reason=reason))
    restored = short(reply.restored_digest) if reply.restored_digest else "nothing"
    console.print(f"rolled back [bold]{short(reply.rolled_back_digest)}[/] on {goal}; serving {restored} "
                  f"({reply.decision_to_zero_ms:.2f} ms from decision to 0 %)")


def _review(action: str, goal: str, adapter: str, reason: str) -> None:
    request = pb.ReviewRequest(goal=goal, adapter_digest=adapter, reason=reason)
    reply: pb.ReviewResponse = _call(
        lambda c: getattr(pb_grpc.AdminStub(c), action.capitalize()),  # type: ignore[no-untyped-call]  # generated stub
        request)
    console.print(f"{short(reply.adapter_digest)} on {goal} {DONE[action]} (state {reply.state}, deployment "
                  f"{short(reply.deployment_id, 8)})")


def predict(goal: str, text: str, top_k: int = typer.Option(3, help="how many labels to show")) -> None:
    """Ask the deployer for one prediction."""
    r: pb.PredictResponse = _call(
        lambda c: pb_grpc.InferenceStub(c).Predict,  # type: ignore[no-untyped-call]  # generated stub: no .pyi for *_pb2_grpc
        pb.PredictRequest(goal=goal, text=text, top_k=top_k))
    table = Table(title=f"{goal}: {r.label} ({r.confidence:.3f})" + ("  [red]escalate[/]" if r.escalate else ""))
    table.add_column("label")
    table.add_column("score", justify="right")
    for s in r.top_k:
        table.add_row(s.label, f"{s.score:.3f}")
    console.print(table)
    console.print(f"adapter {short(r.adapter_digest)} ({r.variant}), request {r.request_id}"
                  + (f", escalated: {r.escalate_reason}" if r.escalate else ""))


def register(app: typer.Typer) -> None:
    """Add `deployer run`, `deployments` and `predict`."""
    deployer = typer.Typer(help="The deployer: gRPC inference and canary rollouts.", no_args_is_help=True)
    deployer.command("run")(run)
    app.add_typer(deployer, name="deployer")
    app.command("deployments")(deployments)
    app.command("predict")(predict)
