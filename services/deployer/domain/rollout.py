"""The rollout state machine of one goal, pure: transitions return the new state and decisions.

States: idle -> (canary step i | mirroring) -> promoted | rolled_back. The champion answers the
traffic the candidate does not; after a promotion the previous champion stays loaded for a while so
that a rollback is one routing swap. Stale or out-of-order inputs raise IllegalTransition.

The two strategies:
- **canary**: the candidate answers `steps[i]` % of live traffic in step i. The last step (100, the
  goal schema requires it) is never run as a step: passing the step before it promotes the candidate,
  and the promotion is the move to 100 %. At 100 % the champion would answer nothing, so there is
  nothing left to compare or fall back to within the step; instead the previous champion stays loaded
  for `recent_promotion_seconds` after the promotion, so that a rollback (drift, an operator) is one
  routing swap. The error and latency thresholds are judged on the steps before 100, not after the
  promotion. (A plan of `steps: [100]` alone has nothing before 100: its one step does run, with the
  candidate on all traffic.)
- **blue-green** is run as *mirroring* (shadow traffic): the champion goes on answering every request,
  the candidate gets a copy of each one and its answer is compared with the champion's, never returned.
  After one step of `min_requests_per_step` compared answers within the thresholds, all traffic
  switches to the candidate at once (the promotion). There is no second, idle environment and
  `steps` is not used. The YAML value stays "blue-green": goals use it.
"""

from __future__ import annotations

from typing import Literal

from services.kernel.errors import IllegalTransition
from services.kernel.goal import Goal
from services.kernel.values import Value

State = Literal["idle", "pending_approval", "canary", "mirroring", "promoted", "rolled_back", "rejected"]
# Rolled-back digests remembered so that a replayed eval.passed cannot bring them back.
RETIRED_KEPT = 50


class Adapter(Value):
    """An approved adapter and where it came from."""

    digest: str
    uri: str
    media_type: str = ""
    size_bytes: int = 0
    deployment_id: str
    goal_version: str
    dataset_version: str = ""
    eval_id: str = ""
    run_id: str = ""
    # The trace of the approval (dataset publication → ... → eval.passed); predictions link to it.
    traceparent: str = ""


class Plan(Value):
    """The goal's rollout and rollback numbers, frozen when a rollout starts."""

    strategy: Literal["canary", "blue-green"] = "canary"   # blue-green: mirrored, then switched (module docstring)
    steps: tuple[int, ...] = (10, 50, 100)                    # canary only; the last (100) is the promotion
    min_requests_per_step: int = 200
    min_step_seconds: float = 0.0
    max_step_seconds: float = 600.0
    min_agreement: float = 0.9
    error_rate: float = 0.02
    latency_p99_ms: float = 100.0
    recent_promotion_seconds: float = 3600.0
    approval: bool = False   # an offered adapter waits in pending_approval until a person approves it


class Policy(Value):
    """What the server does with an answer: escalate below a confidence, never act on some labels."""

    escalate_below_confidence: float = 0.55
    blocked_labels: tuple[str, ...] = ()
    log_text: bool = False
    log_retention_days: int = 30


def plan_of(goal: Goal) -> Plan:
    """The rollout plan a goal declares."""
    r, b = goal.rollout, goal.rollback
    return Plan(strategy=r.strategy, steps=tuple(r.steps), min_requests_per_step=r.min_requests_per_step,
                min_step_seconds=r.min_step_seconds, max_step_seconds=r.max_step_seconds,
                min_agreement=r.min_agreement, error_rate=b.error_rate, latency_p99_ms=b.latency_p99_ms,
                recent_promotion_seconds=b.recent_promotion_seconds, approval=r.requires_approval)


def policy_of(goal: Goal) -> Policy:
    """The serving policy a goal declares."""
    p = goal.policy
    return Policy(escalate_below_confidence=p.escalate_below_confidence,
                  blocked_labels=tuple(sorted(p.blocked_labels)), log_text=p.log_text,
                  log_retention_days=p.retention_days)


class StepRecord(Value):
    """The numbers of one finished (or aborted) step, as deployment events carry them."""

    percent: int
    requests: int = 0
    errors: int = 0
    p99_ms: float = 0.0
    agreement: float = 1.0
    seconds: float = 0.0


class StepStats(Value):
    """What the candidate did in the current step (aggregated by the controller)."""

    requests: int = 0
    errors: int = 0
    slow: int = 0          # requests slower than the goal's latency_p99_ms
    p99_ms: float = 0.0
    compared: int = 0      # mirror answers compared with the champion's
    agreed: int = 0
    drift: bool = False    # the monitor reported drift on the candidate during this step

    @property
    def agreement(self) -> float:
        """Share of compared answers equal to the champion's (1.0 before any comparison)."""
        return self.agreed / self.compared if self.compared else 1.0


class Rollout(Value):
    """Everything the deployer remembers about one goal's deployments."""

    goal: str
    state: State = "idle"
    champion: Adapter | None = None
    candidate: Adapter | None = None
    previous: Adapter | None = None
    plan: Plan = Plan()
    policy: Policy = Policy()
    step_index: int = 0
    step_started_at: float = 0.0
    steps: tuple[StepRecord, ...] = ()
    promoted_at: float | None = None
    retired: tuple[str, ...] = ()
    # A person's hold (`tuneline deployments hold GOAL`): the step neither advances nor times out while
    # held; the guards still roll back. Who held it, since when.
    held_by: str = ""
    held_since: float | None = None

    @property
    def candidate_percent(self) -> int:
        """Share of live traffic the candidate answers (mirroring answers none)."""
        return self.plan.steps[self.step_index] if self.state == "canary" else 0

    @property
    def in_progress(self) -> bool:
        """Whether a candidate is being tried on live traffic."""
        return self.state in ("canary", "mirroring")

    @property
    def held(self) -> bool:
        """Whether a person froze the rollout at its current step."""
        return self.held_since is not None

    @property
    def pending(self) -> bool:
        """Whether a candidate waits for a person's approval (it is loaded, and answers nothing)."""
        return self.state == "pending_approval"

    def loaded(self) -> set[str]:
        """Digests this goal needs in the adapter pool."""
        return {a.digest for a in (self.champion, self.candidate, self.previous) if a is not None}


class Started(Value):
    adapter: Adapter
    strategy: str
    champion_digest: str
    percent: int


class Advanced(Value):
    adapter: Adapter
    step: StepRecord
    percent: int


class Promoted(Value):
    adapter: Adapter
    previous_digest: str
    steps: tuple[StepRecord, ...]
    reason: str


class RolledBack(Value):
    adapter: Adapter
    restored_digest: str
    trigger: str
    reason: str
    numbers: tuple[tuple[str, float], ...] = ()
    incident_id: str = ""


class Pending(Value):
    """An adapter waits for a person (the goal's rollout.approval is required)."""

    adapter: Adapter


class Reviewed(Value):
    """A person approved or rejected a pending adapter."""

    adapter: Adapter
    approved: bool
    by: str
    reason: str


class Held(Value):
    """A person froze the rollout at its current step."""

    adapter: Adapter
    by: str
    reason: str
    percent: int
    state: str


class Resumed(Value):
    """A person let a held rollout continue."""

    adapter: Adapter
    by: str
    reason: str
    held_seconds: float


class Unload(Value):
    digest: str


Decision = Started | Advanced | Promoted | RolledBack | Pending | Reviewed | Held | Resumed | Unload


class Transition(Value):
    """A new state and what to do about it (emit events, unload adapters)."""

    rollout: Rollout
    decisions: tuple[Decision, ...] = ()


def offer(r: Rollout, adapter: Adapter, plan: Plan, policy: Policy, now: float) -> Transition:
    """An approved adapter arrives: first champion, or the start of a canary or (blue-green) mirror rollout."""
    if adapter.digest in r.loaded():
        raise IllegalTransition(f"adapter {adapter.digest} is already deployed for goal {r.goal!r}",
                                hint="a duplicate or replayed eval.passed; nothing to do")
    if adapter.digest in r.retired:
        raise IllegalTransition(f"adapter {adapter.digest} was rolled back for goal {r.goal!r}",
                                hint="train a new adapter; a rolled-back one is never served again")
    if r.in_progress:
        before = _withdraw(r, "superseded", f"superseded by {adapter.digest}", ())
    elif r.pending:  # nobody decided on it: it is rejected by the newer offer, and never serves
        before = review(r, "", False, "deployer", f"superseded by {adapter.digest} before anyone decided", now)
    else:
        before = Transition(rollout=r)
    r, decisions = before.rollout, list(before.decisions)
    if r.previous is not None:
        decisions.append(Unload(digest=r.previous.digest))
        r = r.replace(previous=None)
    base: dict[str, object] = {"plan": plan, "policy": policy, "steps": (), "step_index": 0, "step_started_at": now}
    if plan.approval:
        new = r.replace(**base, state="pending_approval", candidate=adapter, promoted_at=None)
        return Transition(rollout=new, decisions=(*decisions, Pending(adapter=adapter)))
    return _start(r, adapter, plan, decisions, base, now)


def review(r: Rollout, digest: str, approved: bool, by: str, reason: str, now: float) -> Transition:
    """A person's decision on the pending adapter: approved, it starts the goal's rollout; rejected, it never serves."""
    if not r.pending or r.candidate is None or digest not in ("", r.candidate.digest):
        waiting = r.candidate.digest if r.pending and r.candidate else "nothing"
        raise IllegalTransition(f"goal {r.goal!r}: {digest or 'no adapter'} is not waiting for approval (state {r.state}, "
                                f"waiting: {waiting})", hint="see `tuneline deployments`")
    adapter = r.candidate
    reviewed = Reviewed(adapter=adapter, approved=approved, by=by, reason=reason)
    if not approved:
        new = r.replace(state="rejected", candidate=None, retired=_retire(r, adapter.digest))
        return Transition(rollout=new, decisions=(reviewed, Unload(digest=adapter.digest)))
    base: dict[str, object] = {"step_index": 0, "step_started_at": now, "steps": ()}
    return _start(r.replace(candidate=None), adapter, r.plan, [reviewed], base, now)


def _start(r: Rollout, adapter: Adapter, plan: Plan, decisions: list[Decision], base: dict[str, object],
           now: float) -> Transition:
    if r.champion is None:
        started = Started(adapter=adapter, strategy=plan.strategy, champion_digest="", percent=100)
        promoted = Promoted(adapter=adapter, previous_digest="", steps=(), reason="first model for the goal")
        new = r.replace(**base, state="promoted", champion=adapter, promoted_at=now)
        return Transition(rollout=new, decisions=(*decisions, started, promoted))
    state: State = "canary" if plan.strategy == "canary" else "mirroring"
    new = r.replace(**base, state=state, candidate=adapter, promoted_at=None)
    started = Started(adapter=adapter, strategy=plan.strategy, champion_digest=r.champion.digest,
                      percent=new.candidate_percent)
    return Transition(rollout=new, decisions=(*decisions, started))


def judge(r: Rollout, stats: StepStats, now: float) -> Transition | None:
    """Given the candidate's numbers so far: roll back, advance, promote, or None (keep going).

    A held rollout is still guarded (a breach rolls it back) but neither advances nor times out.
    """
    if not r.in_progress:
        return None
    breach = _breach(r.plan, stats, r.state == "mirroring")
    if breach is not None:
        trigger, reason = breach
        return _withdraw(r, trigger, reason, _numbers(stats))
    if r.held:
        return None
    if _step_done(r, stats, now):
        return _advance(r, _record(r, stats, now), now)
    if now - r.step_started_at > r.plan.max_step_seconds:
        reason = (f"step {r.step_index} got {stats.requests} of {r.plan.min_requests_per_step} requests "
                  f"in max_step_seconds={r.plan.max_step_seconds:g}" + (" (drift reported)" if stats.drift else ""))
        return _withdraw(r, "timeout", reason, _numbers(stats))
    return None


def hold(r: Rollout, digest: str, by: str, reason: str, now: float) -> Transition:
    """Freeze the canary (or mirror) at its current step; its share of traffic and its guards stay."""
    candidate = _running(r, digest, "hold")
    if r.held:
        raise IllegalTransition(f"goal {r.goal!r}: the rollout of {candidate.digest} is already held by {r.held_by}",
                                hint=f"`tuneline deployments resume {r.goal}` lets it continue")
    held = Held(adapter=candidate, by=by, reason=reason, percent=r.candidate_percent, state=r.state)
    return Transition(rollout=r.replace(held_by=by, held_since=now), decisions=(held,))


def resume(r: Rollout, digest: str, by: str, reason: str, now: float) -> Transition:
    """Let a held rollout continue: the step's clock restarts, the requests it already counted still count."""
    candidate = _running(r, digest, "resume")
    if r.held_since is None:
        raise IllegalTransition(f"goal {r.goal!r}: the rollout of {candidate.digest} is not held",
                                hint="nothing to resume; see `tuneline deployments`")
    resumed = Resumed(adapter=candidate, by=by, reason=reason, held_seconds=max(0.0, now - r.held_since))
    return Transition(rollout=r.replace(held_by="", held_since=None, step_started_at=now), decisions=(resumed,))


def _running(r: Rollout, digest: str, action: str) -> Adapter:
    if not r.in_progress or r.candidate is None or digest not in ("", r.candidate.digest):
        running = r.candidate.digest if r.in_progress and r.candidate else "no canary"
        raise IllegalTransition(f"goal {r.goal!r}: cannot {action} {digest or 'a rollout'}: only a canary or mirror "
                                f"in progress can be (state {r.state}, candidate {running})",
                                hint="see `tuneline deployments`")
    return r.candidate


def rollback(r: Rollout, digest: str, trigger: str, reason: str, now: float,
             numbers: tuple[tuple[str, float], ...] = (), incident_id: str = "") -> Transition:
    """Take the canary (or a freshly promoted champion) out of traffic; `digest` empty means whichever."""
    if r.in_progress and r.candidate is not None and digest in ("", r.candidate.digest):
        return _withdraw(r, trigger, reason, numbers, incident_id)
    if _freshly_promoted(r, now) and r.champion is not None and digest in ("", r.champion.digest):
        old, restored = r.champion, r.previous
        new = r.replace(state="rolled_back", champion=restored, previous=None, promoted_at=None,
                        retired=_retire(r, old.digest))
        back = RolledBack(adapter=old, restored_digest=restored.digest if restored else "",
                          trigger=trigger, reason=reason, numbers=numbers, incident_id=incident_id)
        return Transition(rollout=new, decisions=(back, Unload(digest=old.digest)))
    serving = r.candidate.digest if r.in_progress and r.candidate else "no canary"
    raise IllegalTransition(f"goal {r.goal!r}: {digest or 'a rollback'} is not a canary or freshly promoted "
                            f"champion (state {r.state}, candidate {serving})",
                            hint="nothing to roll back; see `tuneline deployments`")


def release_previous(r: Rollout, now: float) -> Transition | None:
    """Unload the previous champion once the post-promotion rollback window has passed."""
    if r.previous is None or _freshly_promoted(r, now):
        return None
    return Transition(rollout=r.replace(previous=None), decisions=(Unload(digest=r.previous.digest),))


def _freshly_promoted(r: Rollout, now: float) -> bool:
    return (r.state == "promoted" and r.previous is not None and r.promoted_at is not None
            and now - r.promoted_at <= r.plan.recent_promotion_seconds)


def _breach(plan: Plan, s: StepStats, mirroring: bool) -> tuple[str, str] | None:
    # Judge against the whole step: once more errors (or slow answers, or disagreements) have been seen
    # than the step's full quota allows, no later request can bring the step back within the threshold.
    n = max(s.requests, plan.min_requests_per_step)
    if s.errors > plan.error_rate * n:
        return "error_rate", f"{s.errors} errors in {s.requests} requests exceed error_rate {plan.error_rate:g}"
    if s.slow > 0.01 * n:
        return "latency", f"{s.slow} of {s.requests} requests slower than latency_p99_ms {plan.latency_p99_ms:g}"
    m = max(s.compared, plan.min_requests_per_step)
    if mirroring and s.compared - s.agreed > (1.0 - plan.min_agreement) * m:
        return "agreement", f"agreement {s.agreement:.3f} over {s.compared} is below {plan.min_agreement:g}"
    return None


def _step_done(r: Rollout, s: StepStats, now: float) -> bool:
    enough = s.requests >= r.plan.min_requests_per_step
    if r.state == "mirroring":
        enough = enough and s.compared >= r.plan.min_requests_per_step
    return enough and not s.drift and now - r.step_started_at >= r.plan.min_step_seconds


def _advance(r: Rollout, done: StepRecord, now: float) -> Transition:
    steps, last = (*r.steps, done), len(r.plan.steps) - 1
    nxt = r.step_index + 1
    assert r.candidate is not None
    # `nxt < last`, not `<=`: the last step (100 %) is the promotion itself, never a step that runs
    # (see the module docstring); a mirror has one step only, then switches.
    if r.state == "canary" and nxt < last:
        new = r.replace(step_index=nxt, step_started_at=now, steps=steps)
        adv = Advanced(adapter=r.candidate, step=done, percent=new.candidate_percent)
        return Transition(rollout=new, decisions=(adv,))
    how = "mirrored" if r.state == "mirroring" else "canary"
    reason = f"{how} rollout passed {len(steps)} step(s) within the thresholds"
    new = r.replace(state="promoted", champion=r.candidate, candidate=None, previous=r.champion, promoted_at=now,
                    steps=steps)
    prev = r.champion.digest if r.champion else ""
    return Transition(rollout=new, decisions=(Promoted(adapter=r.candidate, previous_digest=prev, steps=steps,
                                                       reason=reason),))


def _withdraw(r: Rollout, trigger: str, reason: str, numbers: tuple[tuple[str, float], ...],
              incident_id: str = "") -> Transition:
    assert r.candidate is not None
    old = r.candidate
    new = r.replace(state="rolled_back", candidate=None, retired=_retire(r, old.digest), held_by="", held_since=None)
    restored = r.champion.digest if r.champion else ""
    back = RolledBack(adapter=old, restored_digest=restored, trigger=trigger, reason=reason, numbers=numbers,
                      incident_id=incident_id)
    return Transition(rollout=new, decisions=(back, Unload(digest=old.digest)))


def _retire(r: Rollout, digest: str) -> tuple[str, ...]:
    return (*r.retired, digest)[-RETIRED_KEPT:]


def _record(r: Rollout, s: StepStats, now: float) -> StepRecord:
    return StepRecord(percent=r.candidate_percent, requests=s.requests, errors=s.errors, p99_ms=s.p99_ms,
                      agreement=s.agreement, seconds=max(0.0, now - r.step_started_at))


def _numbers(s: StepStats) -> tuple[tuple[str, float], ...]:
    return (("requests", float(s.requests)), ("errors", float(s.errors)), ("slow", float(s.slow)),
            ("p99_ms", s.p99_ms), ("agreement", s.agreement))
