"""Wiring, done once: settings -> store, blobs, model loader -> subscriptions, job runner, runtime."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from services.evaluator import handlers, job
from services.evaluator.adapters.model import load_scorer
from services.evaluator.settings import EvaluatorSettings
from services.evaluator.store import MIGRATIONS
from services.kernel.blobs import BlobStore
from services.kernel.bus.consumer import Subscription
from services.kernel.jobs import JobRunner
from services.kernel.modeling import LoadedClassifier
from services.kernel.runtime import ServiceRuntime
from services.kernel.store import Store

SERVICE = "evaluator"


def open_store(settings: EvaluatorSettings) -> Store:
    """The evaluator's store with its migrations applied."""
    return Store.open(settings, SERVICE, MIGRATIONS)


def deps(settings: EvaluatorSettings, store: Store) -> job.EvalDeps:
    """The evaluation job's dependencies with the real model loader."""
    loader = partial(_load, settings)
    return job.EvalDeps(store=store, blobs=BlobStore.from_settings(settings), settings=settings, load_scorer=loader)


def _load(settings: EvaluatorSettings, base_model: str, folder: Path, digest: str) -> LoadedClassifier:
    return load_scorer(base_model, folder, digest, settings.evaluator_device, settings.evaluator_torch_threads)


def subscriptions() -> list[Subscription]:
    """What the evaluator consumes: runs to judge, goals to judge them by, and who serves."""
    return [
        Subscription("run.finished", handlers.on_run_finished, SERVICE),
        Subscription("goal.applied", handlers.on_goal_applied, SERVICE),
        Subscription("deployment.promoted", handlers.on_deployment_promoted, SERVICE),
        Subscription("deployment.rolled_back", handlers.on_deployment_rolled_back, SERVICE),
    ]


def job_runner(d: job.EvalDeps) -> JobRunner:
    """Runs evaluation jobs; a job that fails for good still yields eval.failed (fail closed)."""
    return JobRunner(d.store, handlers.JOB_KIND, partial(job.execute, deps=d), partial(job.on_failure, deps=d))


def build_runtime(settings: EvaluatorSettings | None = None) -> ServiceRuntime:
    """The evaluator process."""
    settings = settings or EvaluatorSettings()
    store = open_store(settings)
    return ServiceRuntime(SERVICE, settings, store, subscriptions(), job_runners=[job_runner(deps(settings, store))])
