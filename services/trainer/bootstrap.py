"""Wiring, done once: settings -> store, blobs -> subscriptions, the training job runner, runtime."""

from __future__ import annotations

from services.kernel.blobs import BlobStore
from services.kernel.bus.consumer import Subscription
from services.kernel.jobs import JobRunner
from services.kernel.runtime import ServiceRuntime
from services.kernel.store import Store
from services.trainer import handlers
from services.trainer.settings import TrainerSettings
from services.trainer.store import MIGRATIONS
from services.trainer.training_job import TrainingJob

SERVICE = "trainer"


def open_store(settings: TrainerSettings) -> Store:
    """The trainer's store with its migrations applied."""
    return Store.open(settings, SERVICE, MIGRATIONS)


def subscriptions() -> list[Subscription]:
    """What the trainer consumes: goals, registered datasets, explicit requests, rollbacks."""
    return [
        Subscription("goal.applied", handlers.on_goal_applied, SERVICE),
        Subscription("dataset.registered", handlers.on_dataset_registered, SERVICE),
        Subscription("run.requested", handlers.on_run_requested, SERVICE),
        Subscription("rollback.requested", handlers.on_rollback_requested, SERVICE),
    ]


def job_runner(settings: TrainerSettings, store: Store) -> JobRunner:
    """Runs training jobs one at a time; a run that fails for good yields one run.finished(failed)."""
    job = TrainingJob(settings, store, BlobStore.from_settings(settings))
    return JobRunner(store, handlers.TRAIN_JOB, job.execute, job.on_failure, max_attempts=settings.job_max_attempts)


def build_runtime(settings: TrainerSettings | None = None) -> ServiceRuntime:
    """The trainer process."""
    settings = settings or TrainerSettings()
    store = open_store(settings)
    return ServiceRuntime(SERVICE, settings, store, subscriptions(), job_runners=[job_runner(settings, store)])
