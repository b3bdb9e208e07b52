"""bgjobs: background jobs and cron/interval scheduling on SQLite or Postgres.

bg = (
    bgjobs.new(bgjobs.sqlite("app.db"))
    .with_queue(bgjobs.queue("default").with_worker(bgjobs.worker("send", send)))
    .build()
)
bg.enqueue("send", {"to": "ada@example.com"})
bg.run()
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from bgjobs.adapters.base import Occurrence, ScheduleRecord, Store
from bgjobs.adapters.urls import open_store
from bgjobs.builder import (
    MissedRuns,
    Overlap,
    QueueSpec,
    Retention,
    ScheduledJobSpec,
    WorkerSpec,
    queue,
    scheduled_job,
    worker,
)
from bgjobs.errors import (
    BgJobsError,
    ConfigError,
    DatabaseURLError,
    PayloadError,
    RuntimeStateError,
    ScheduleError,
    SchemaError,
    UnknownScheduleError,
    UnknownWorkerError,
)
from bgjobs.events import Event, Listener, logging_listener
from bgjobs.job import (
    Cancellation,
    Cancelled,
    CancelOutcome,
    Discard,
    Job,
    JobError,
    JobState,
    Progress,
    Snooze,
)
from bgjobs.job_requests import JobRequest
from bgjobs.retry import constant, exponential
from bgjobs.runtime.app import BgJobs, BgJobsSpec, ScheduleInfo, new
from bgjobs.schedules import cron, every, schedule
from bgjobs.unique import Unique

__version__ = "0.1.0"


def sqlite(
    path: str | os.PathLike[str] = "bgjobs.db",
    *,
    migrate: bool = True,
    busy_timeout: timedelta = timedelta(seconds=30),
    synchronous: str = "NORMAL",
    create_dirs: bool = False,
) -> Store:
    """The embedded default: one SQLite file, shared safely by threads and processes.
    ``":memory:"`` gives a private temporary file (tests, demos). The file's directory must
    exist, so that a mistyped path fails instead of starting an empty database elsewhere;
    ``create_dirs=True`` creates it."""
    from bgjobs.adapters.sqlite import SQLiteStore

    return SQLiteStore(
        path,
        migrate=migrate,
        busy_timeout=busy_timeout,
        synchronous=synchronous,
        create_dirs=create_dirs,
    )


def postgres(conninfo: str | Any, **options: Any) -> Store:
    """Postgres via psycopg 3: a URL/conninfo string, or an existing psycopg_pool pool."""
    from bgjobs.adapters.postgres import PostgresStore

    store: Store = PostgresStore(conninfo, **options)
    return store


__all__ = [
    "BgJobs",
    "BgJobsError",
    "BgJobsSpec",
    "CancelOutcome",
    "Cancellation",
    "Cancelled",
    "ConfigError",
    "DatabaseURLError",
    "Discard",
    "Event",
    "Job",
    "JobError",
    "JobRequest",
    "JobState",
    "Listener",
    "MissedRuns",
    "Occurrence",
    "Overlap",
    "PayloadError",
    "Progress",
    "QueueSpec",
    "Retention",
    "RuntimeStateError",
    "ScheduleError",
    "ScheduleInfo",
    "ScheduleRecord",
    "ScheduledJobSpec",
    "SchemaError",
    "Snooze",
    "Store",
    "Unique",
    "UnknownScheduleError",
    "UnknownWorkerError",
    "WorkerSpec",
    "constant",
    "cron",
    "every",
    "exponential",
    "logging_listener",
    "new",
    "open_store",
    "postgres",
    "queue",
    "schedule",
    "scheduled_job",
    "sqlite",
    "worker",
]
