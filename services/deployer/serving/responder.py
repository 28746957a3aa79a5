"""Answering a prediction: validate, route, batch, apply the goal's policy, tell the observer and the log.

Transport-free (the gRPC servicer decodes and encodes around it), so every rule is unit-testable
with a fake pool. Admission refusals (overload, shutdown) never reach an adapter and are not
reported to the observer; model failures are, as error outcomes of the slot that failed.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from services.deployer.domain.routing import GoalRoute, RoutingTable, Slot
from services.deployer.serving import metrics
from services.deployer.serving.batcher import MicroBatcher, Overloaded, ShuttingDown
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.inference_log import LogEntry, LogSink
from services.deployer.serving.outcome import ServedObserver, ServedOutcome
from services.deployer.serving.predictions import AdapterNotLoaded, Scored
from services.deployer.serving.validation import check_goal, check_top_k, clean_text
from services.kernel.errors import InvalidInput
from services.kernel.ids import uuid7
from services.kernel.telemetry import link_current_span

log = logging.getLogger(__name__)
_REQUEST_ID_MAX = 128


class LoadedAdapters(Protocol):
    """The pool as the responder sees it."""

    def loaded(self) -> set[str]:
        """Digests that may serve now."""


@dataclass(frozen=True)
class Question:
    """One decoded request."""

    goal: str
    text: str
    request_id: str = ""
    tenant: str = ""
    top_k: int = 0
    trace_id: str = ""
    traceparent: str = ""


@dataclass(frozen=True)
class Answer:
    """One prediction with the policy's decision and where it came from."""

    label: str
    confidence: float
    top_k: tuple[tuple[str, float], ...]
    escalate: bool
    escalate_reason: str
    slot: Slot
    request_id: str
    trace_id: str


@dataclass(frozen=True)
class _Admitted:
    question: Question
    text: str
    top_k: int
    route: GoalRoute
    slot: Slot
    mirror: Slot | None
    future: Future[Scored]
    started: float


def decide(route: GoalRoute, label: str, confidence: float) -> tuple[bool, str]:
    """The goal's policy: escalate a blocked label or a confidence below the threshold."""
    if label in route.blocked_labels:
        return True, f"label {label!r} is blocked for automatic action"
    if confidence < route.escalate_below_confidence:
        return True, f"confidence {confidence:.3f} is below {route.escalate_below_confidence:.3f}"
    return False, ""


def top_labels(scored: Scored, k: int) -> tuple[tuple[str, float], ...]:
    """The k most probable labels with their probabilities, best first."""
    order = np.argsort(-scored.probs, kind="stable")[:k]
    return tuple((scored.labels[i], float(scored.probs[i])) for i in order)


def _margin(probs: np.ndarray) -> float:
    top = np.sort(probs)[::-1]
    return float(top[0] - top[1]) if len(top) > 1 else float(top[0])


class Responder:
    """Turns Questions into Answers through the routing table, the pool and the batcher."""

    def __init__(self, routing: RoutingTable, pool: LoadedAdapters, batcher: MicroBatcher,
                 observer: ServedObserver, log_sink: LogSink, config: ServingConfig, bus_retention_days: int = 7) -> None:
        self._routing, self._pool, self._batcher = routing, pool, batcher
        self._observer, self._log, self._config = observer, log_sink, config
        # The bus keeps inference.logged this long: a goal that allows its text for less gets none logged.
        self._bus_retention_days = bus_retention_days
        self.mirror_skipped = 0
        self._warned: set[str] = set()
        self._warned_retention: set[str] = set()

    def answer(self, question: Question, timeout_s: float | None = None) -> Answer:
        """Answer one question (InvalidInput, NotFound, Overloaded, ShuttingDown, AdapterNotLoaded)."""
        return self._complete(self._admit(question), timeout_s)

    def answer_many(self, questions: list[Question], timeout_s: float | None = None) -> list[Answer]:
        """Answer several questions, batched together; any invalid one fails the whole call."""
        if len(questions) > self._config.max_batch_items:
            raise InvalidInput(f"{len(questions)} requests in one batch; the limit is {self._config.max_batch_items}")
        for i, q in enumerate(questions):
            self._validated(q, f"requests[{i}]: ")
        admitted = [self._admit(q) for q in questions]
        return [self._complete(a, timeout_s) for a in admitted]

    # ------------------------------------------------------------ steps

    def _validated(self, q: Question, where: str = "") -> tuple[str, int, str]:
        try:
            check_goal(q.goal)
            if len(q.request_id) > _REQUEST_ID_MAX or not q.request_id.isprintable():
                raise InvalidInput(f"request_id must be at most {_REQUEST_ID_MAX} printable characters")
            return clean_text(q.text, self._config), check_top_k(q.top_k, self._config), q.request_id or uuid7()
        except InvalidInput as err:
            raise InvalidInput(where + str(err), hint=err.hint) from None

    def _admit(self, q: Question) -> _Admitted:
        text, top_k, request_id = self._validated(q)
        q = Question(q.goal, q.text, request_id, q.tenant, q.top_k, q.trace_id, q.traceparent)
        for _ in range(3):
            route = self._routing.get(q.goal)
            slot, mirror = self._routing.choose(q.goal, request_id)
            assert route is not None  # choose() raised NotFound otherwise
            link_current_span(slot.traceparent)
            try:
                slot, future = self._submit(route, slot, text)
                return _Admitted(q, text, top_k, route, slot, mirror, future, time.perf_counter())
            except AdapterNotLoaded:
                if self._routing.get(q.goal) is route:
                    metrics.REFUSALS.add(1, {"reason": "adapter_not_loaded"})
                    raise  # the route still names an adapter the pool does not hold: refuse
                # A hot swap replaced the route (and unloaded its adapter) between choose and submit: ask again.
        raise AdapterNotLoaded(f"goal {q.goal!r} kept changing adapters while this request was admitted")

    def _submit(self, route: GoalRoute, slot: Slot, text: str) -> tuple[Slot, Future[Scored]]:
        """Queue for the chosen adapter; a canary that is not (yet) in the pool falls back to the champion."""
        try:
            return slot, self._batcher.submit(slot.digest, text)
        except AdapterNotLoaded:
            champion = route.champion
            if slot.role != "canary" or champion is None or champion.digest == slot.digest:
                raise
            if slot.digest not in self._warned:  # once per digest: under load this would flood the log
                self._warned.add(slot.digest)
                log.warning("canary %s is not loaded; answering with champion %s", slot.digest, champion.digest)
            return champion, self._batcher.submit(champion.digest, text)

    def _complete(self, a: _Admitted, timeout_s: float | None) -> Answer:
        try:
            scored = a.future.result(timeout_s)
        except TimeoutError:
            self._failed(a, "DEADLINE_EXCEEDED")
            raise
        except Exception:
            self._failed(a, "INTERNAL")
            raise
        answer = self._answer(a, scored)
        latency_ms = (time.perf_counter() - a.started) * 1000
        self._served(a, answer, scored, latency_ms)
        if a.mirror is not None:
            self._shadow(a, answer)
        return answer

    def _answer(self, a: _Admitted, scored: Scored) -> Answer:
        best = int(np.argmax(scored.probs))
        label, confidence = scored.labels[best], float(scored.probs[best])
        escalate, reason = decide(a.route, label, confidence)
        return Answer(label, confidence, top_labels(scored, a.top_k), escalate, reason, a.slot,
                      a.question.request_id, a.question.trace_id)

    # ------------------------------------------------------------ reporting

    def _served(self, a: _Admitted, answer: Answer, scored: Scored, latency_ms: float) -> None:
        outcome = ServedOutcome(answer.request_id, answer.label, answer.confidence, latency_ms, False, "")
        metrics.served(a.question.goal, a.slot.digest, a.slot.role, "OK", latency_ms / 1000)
        self._observer.on_served(a.question.goal, a.slot, outcome)
        self._log.record(self._entry(a, a.slot, a.slot.role, scored, answer.label, latency_ms, answer.escalate))

    def _failed(self, a: _Admitted, code: str) -> None:
        latency_ms = (time.perf_counter() - a.started) * 1000
        outcome = ServedOutcome(a.question.request_id, "", 0.0, latency_ms, True, code)
        metrics.served(a.question.goal, a.slot.digest, a.slot.role, code, latency_ms / 1000)
        self._observer.on_served(a.question.goal, a.slot, outcome)
        self._log.record(self._entry(a, a.slot, a.slot.role, None, "", latency_ms, False, code))

    def _shadow(self, a: _Admitted, answer: Answer) -> None:
        """Run the mirror on the same text off the request path; compare with the champion's label."""
        mirror = a.mirror
        assert mirror is not None
        try:
            future = self._batcher.submit(mirror.digest, a.text)
        except (Overloaded, ShuttingDown, AdapterNotLoaded):
            self.mirror_skipped += 1
            return
        started = time.perf_counter()
        future.add_done_callback(lambda f: self._mirrored(a, mirror, answer.label, f, started))

    def _mirrored(self, a: _Admitted, mirror: Slot, champion_label: str, f: Future[Scored], started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        if f.exception() is not None:
            outcome = ServedOutcome(a.question.request_id, "", 0.0, latency_ms, True, "INTERNAL", champion_label)
            metrics.served(a.question.goal, mirror.digest, "mirror", "INTERNAL", latency_ms / 1000)
            self._observer.on_served(a.question.goal, mirror, outcome)
            return
        scored = f.result()
        best = int(np.argmax(scored.probs))
        label, confidence = scored.labels[best], float(scored.probs[best])
        outcome = ServedOutcome(a.question.request_id, label, confidence, latency_ms, False, "", champion_label)
        metrics.served(a.question.goal, mirror.digest, "mirror", "OK", latency_ms / 1000)
        self._observer.on_served(a.question.goal, mirror, outcome)
        escalate, _ = decide(a.route, label, confidence)
        self._log.record(self._entry(a, mirror, "mirror", scored, label, latency_ms, escalate))

    def _keeps_text_briefly(self, route: GoalRoute) -> bool:
        if route.log_retention_days >= self._bus_retention_days:
            return True
        if route.goal not in self._warned_retention:
            self._warned_retention.add(route.goal)
            log.warning("goal %s allows logged text for %d days but the bus keeps inference.logged for %d "
                        "(inference_log_retention_days): its text is not logged", route.goal,
                        route.log_retention_days, self._bus_retention_days)
        return False

    def _entry(self, a: _Admitted, slot: Slot, variant: str, scored: Scored | None, label: str,
               latency_ms: float, escalated: bool, error_code: str = "") -> LogEntry:
        q = a.question
        log_text = a.route.log_text and self._config.allow_text_logging and self._keeps_text_briefly(a.route)
        return LogEntry(
            request_id=q.request_id, goal=q.goal, goal_version=slot.goal_version, adapter_digest=slot.digest,
            dataset_version=slot.dataset_version, deployment_id=slot.deployment_id, variant=variant, label=label,
            confidence=float(scored.probs.max()) if scored else 0.0, margin=_margin(scored.probs) if scored else 0.0,
            latency_ms=latency_ms, text_length=len(a.text), token_count=scored.token_count if scored else 0,
            embedding=scored.embedding if scored else None, text=a.text if log_text else "", escalated=escalated,
            error=bool(error_code), error_code=error_code, served_at_unix_ms=time.time_ns() // 1_000_000,
            tenant=q.tenant, trace_id=q.trace_id, traceparent=q.traceparent)
