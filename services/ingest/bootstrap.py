"""Wiring, done once: settings -> store and blobs -> subscriptions, the ingest job runner, the runtime."""

from __future__ import annotations

from functools import partial

from services.ingest import handlers, job
from services.ingest.settings import IngestSettings
from services.ingest.store import MIGRATIONS
from services.kernel.blobs import BlobStore
from services.kernel.bus.consumer import Subscription
from services.kernel.jobs import JobRunner
from services.kernel.runtime import ServiceRuntime
from services.kernel.store import Store

SERVICE = "ingest"


def open_store(settings: IngestSettings) -> Store:
    """The ingest store with its migrations applied."""
    return Store.open(settings, SERVICE, MIGRATIONS)


def deps(settings: IngestSettings, store: Store) -> job.IngestDeps:
    """The ingest job's dependencies."""
    return job.IngestDeps(store=store, blobs=BlobStore.from_settings(settings), settings=settings)


def subscriptions() -> list[Subscription]:
    """What ingest consumes: goals (for the data policy) and published datasets."""
    return [
        Subscription("goal.applied", handlers.on_goal_applied, SERVICE),
        Subscription("dataset.published", handlers.on_dataset_published, SERVICE),
    ]


def job_runner(d: job.IngestDeps) -> JobRunner:
    """Runs ingest jobs one at a time."""
    return JobRunner(d.store, handlers.JOB_KIND, partial(job.execute, deps=d), partial(job.on_failure, deps=d))


def build_runtime(settings: IngestSettings | None = None) -> ServiceRuntime:
    """The ingest process."""
    settings = settings or IngestSettings()
    store = open_store(settings)
    return ServiceRuntime(SERVICE, settings, store, subscriptions(), job_runners=[job_runner(deps(settings, store))])
