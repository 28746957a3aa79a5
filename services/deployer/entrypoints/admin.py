"""The Admin gRPC servicer (tuneline.serving.v1.Admin): list deployments, roll back by hand, approve or reject,
hold or resume."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from tuneline.serving.v1 import inference_pb2 as pb
from tuneline.serving.v1 import inference_pb2_grpc as pb_grpc

from services.deployer.controller import Controller
from services.deployer.domain.rollout import Adapter, Rollout
from services.deployer.handlers import hold_or_resume, manual_rollback, review_pending
from services.kernel.credentials import Refused
from services.kernel.errors import IllegalTransition, NotFound, TunelineError
from services.kernel.goals import TenantDirectory
from services.kernel.grpc_auth import Guard, current_principal, status_of


def _slot(a: Adapter, role: str, percent: int) -> pb.AdapterSlot:
    return pb.AdapterSlot(adapter_digest=a.digest, role=role, traffic_percent=percent,
                          deployment_id=a.deployment_id, dataset_version=a.dataset_version, eval_id=a.eval_id)


def deployment_of(r: Rollout, step_requests: int) -> pb.GoalDeployment:
    """A goal's rollout as the Admin API shows it."""
    slots = []
    if r.champion:
        slots.append(_slot(r.champion, "champion", 100 - r.candidate_percent))
    if r.candidate and r.in_progress:
        slots.append(_slot(r.candidate, "canary" if r.state == "canary" else "mirror", r.candidate_percent))
    if r.candidate and r.pending:
        slots.append(_slot(r.candidate, "pending", 0))
    if r.previous:
        slots.append(_slot(r.previous, "previous", 0))
    current = r.candidate if r.in_progress and r.candidate else r.champion
    return pb.GoalDeployment(goal=r.goal, goal_version=current.goal_version if current else "", state=r.state,
                             strategy=r.plan.strategy, slots=slots, step_index=r.step_index,
                             step_requests=step_requests, deployment_id=current.deployment_id if current else "",
                             held=r.held, held_by=r.held_by)


class AdminServicer(pb_grpc.AdminServicer):
    """Ops surface of the deployer (the `operate` scope). The server's interceptor authenticates and checks
    the scope; the `guard` checks each goal's tenant, and lists show only the caller's tenant's goals."""

    def __init__(self, controller: Controller, unlogged: Callable[[], int] = lambda: 0, guard: Guard | None = None,
                 tenants: TenantDirectory | None = None) -> None:
        self.controller, self.unlogged = controller, unlogged
        self.guard, self.tenants = guard, tenants or TenantDirectory()

    def _check(self, goal: str, context: grpc.ServicerContext) -> None:
        if self.guard is None:
            return
        try:
            self.guard.check_tenant(self.tenants.tenant_of(goal), f"goal {goal!r}")
        except Refused as refusal:
            context.abort(status_of(refusal), refusal.reason)

    def ListDeployments(self, request: pb.ListDeploymentsRequest, context: grpc.ServicerContext) -> pb.ListDeploymentsResponse:
        """Every goal's deployment the caller may see (or one goal's)."""
        rollouts = self.controller.rollouts()
        if self.guard is not None:
            guard = self.guard
            rollouts = [r for r in rollouts if guard.visible(self.tenants.tenant_of(r.goal))]
        if request.goal:
            self._check(request.goal, context)
            rollouts = [r for r in rollouts if r.goal == request.goal]
            if not rollouts:
                context.abort(grpc.StatusCode.NOT_FOUND, f"goal {request.goal!r} has no deployment")
        items = [deployment_of(r, self.controller.step_stats(r.goal).requests) for r in rollouts]
        return pb.ListDeploymentsResponse(deployments=items, unlogged_predictions=self.unlogged())

    def Rollback(self, request: pb.RollbackRequest, context: grpc.ServicerContext) -> pb.RollbackResponse:
        """Take the goal's canary (or freshly promoted champion) out of traffic now."""
        self._check(request.goal, context)
        try:
            self.controller.rollout(request.goal)
            _, back, to_zero_ms = manual_rollback(self.controller, request.goal, request.reason)
        except NotFound as err:
            context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        except IllegalTransition as err:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
        except TunelineError as err:
            context.abort(grpc.StatusCode.INTERNAL, str(err))
        return pb.RollbackResponse(deployment_id=back.adapter.deployment_id, rolled_back_digest=back.adapter.digest,
                                   restored_digest=back.restored_digest, decision_to_zero_ms=to_zero_ms)

    def Approve(self, request: pb.ReviewRequest, context: grpc.ServicerContext) -> pb.ReviewResponse:
        """The goal's waiting adapter starts its rollout (canary, mirror, or first champion)."""
        return self._review(request, context, approved=True)

    def Reject(self, request: pb.ReviewRequest, context: grpc.ServicerContext) -> pb.ReviewResponse:
        """The goal's waiting adapter never serves."""
        return self._review(request, context, approved=False)

    def Hold(self, request: pb.ReviewRequest, context: grpc.ServicerContext) -> pb.ReviewResponse:
        """The goal's canary (or mirror) stays at its current step, still guarded, until Resume."""
        return self._decide(request, context, "held", lambda by, reason: hold_or_resume(
            self.controller, request.goal, request.adapter_digest, True, by, reason))

    def Resume(self, request: pb.ReviewRequest, context: grpc.ServicerContext) -> pb.ReviewResponse:
        """A held rollout continues; its step's clock restarts."""
        return self._decide(request, context, "resumed", lambda by, reason: hold_or_resume(
            self.controller, request.goal, request.adapter_digest, False, by, reason))

    def _review(self, request: pb.ReviewRequest, context: grpc.ServicerContext, approved: bool) -> pb.ReviewResponse:
        return self._decide(request, context, "approved" if approved else "rejected", lambda by, reason: review_pending(
            self.controller, request.goal, request.adapter_digest, approved, by, reason))

    def _decide(self, request: pb.ReviewRequest, context: grpc.ServicerContext, done: str,
                apply: Callable[[str, str], Rollout]) -> pb.ReviewResponse:
        """A person's decision on the goal's candidate, recorded with the credential's principal as `by`."""
        self._check(request.goal, context)
        principal = current_principal()
        by = principal.name if principal else "local"  # no interceptor: an in-process servicer of a test
        try:
            about = self.controller.rollout(request.goal).candidate
            after = apply(by, request.reason or done)
        except NotFound as err:
            context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        except IllegalTransition as err:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
        except TunelineError as err:
            context.abort(grpc.StatusCode.INTERNAL, str(err))
        assert about is not None  # the machine refused a goal without a candidate
        return pb.ReviewResponse(deployment_id=about.deployment_id, adapter_digest=about.digest, state=after.state)
