"""The Store protocol: the only way the runtime, CLI and tests talk to storage.

A backend is one package under ``bgjobs.adapters`` that owns all of its SQL and implements this
protocol. Both shipped backends do so through ``adapters.shared_store.SharedStore``, which holds
everything but the SQL, and pass the same contract suite (tests/adapters/test_contract.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bgjobs.job import Cancellation, Job, JobError, JobState, NewJob

SCHEMA_VERSION = 4
"""The schema version this release of bgjobs reads and writes."""


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"  # archive (or delete) the job
    RETRY = "retry"  # back to the queue after ``delay``; the attempt counts
    FAILED = "failed"  # out of attempts: archive as failed
    DISCARDED = "discarded"  # failed on purpose or poison input: archive as discarded
    SNOOZED = "snoozed"  # back to the queue after ``delay``; the attempt does not count
    CANCELLED = "cancelled"  # cancelled while it ran: archive as cancelled


@dataclass(frozen=True)
class Completion:
    """How one claimed job ended. Applied only if the job is still reserved by ``node_id`` for the
    same attempt (a fence), so a job rescued from under a slow node is never finished twice."""

    job: Job
    node_id: str
    outcome: Outcome
    error: JobError | None = None
    delay: timedelta = timedelta(0)
    keep: bool = True  # SUCCEEDED only: False deletes instead of archiving
    next_run: NewJob | None = None  # scheduled jobs: inserted in the same transaction


@dataclass(frozen=True)
class Applied:
    """The result of applying a Completion: whether the fence held, and the next run if inserted."""

    applied: bool
    next_run: Job | None = None


@dataclass(frozen=True)
class ClaimRequest:
    queue: str
    node_id: str
    limit: int
    lease: timedelta
    blocking: bool = False  # strict FIFO, one job at a time across all nodes


@dataclass(frozen=True)
class ScheduleRegistration:
    """Make sure a scheduled job has exactly one pending run.

    ``first_run`` is inserted when there is no pending or running row, and replaces a pending run
    whose stored definition differs from ``definition`` (the schedule changed between deploys).
    A pending run due before ``overdue_before`` is replaced by ``overdue_run`` (the missed-runs
    policy: the latest missed occurrence for coalesce, the next future one for skip).
    """

    name: str
    definition: str
    first_run: NewJob
    overdue_before: datetime | None = None
    overdue_run: NewJob | None = None


@dataclass(frozen=True)
class ScheduleState:
    name: str
    definition: str
    queue: str
    next_run_at: datetime | None
    running: bool
    last_due_at: datetime | None
    last_finished_at: datetime | None
    last_outcome: str | None


@dataclass(frozen=True)
class NodeInfo:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    queues: tuple[str, ...]


@dataclass(frozen=True)
class QueueStats:
    queue: str
    available: int
    scheduled: int
    running: int
    failed: int  # failed + discarded, all time (until pruned)
    succeeded_recent: int  # finished in the window given to ``queue_stats``
    failed_recent: int


@dataclass(frozen=True)
class JobFilter:
    state: JobState | None = None
    name: str | None = None
    queue: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class RescueResult:
    released: list[Job]  # back to the queue
    failed: list[Job]  # out of attempts: archived as failed


@dataclass(frozen=True)
class InEventLoop:
    """A caller's async connection and the event loop it belongs to (``aenqueue(conn=...)``):
    the store runs its statements on that loop while the caller awaits."""

    conn: object
    loop: asyncio.AbstractEventLoop


class Wakeup(Protocol):
    """A running channel that calls back when jobs may be waiting (queue name, or None = all)."""

    def stop(self) -> None: ...


WakeCallback = Callable[[str | None], None]
EventCallback = Callable[[str, str | None], None]  # (kind: "lost"|"restored", error)
# A running job may have been asked to stop: its id, or None for "look for any".
CancelCallback = Callable[[int | None], None]


class Store(Protocol):
    backend: str
    display_url: str  # for humans; credentials masked

    # lifecycle -----------------------------------------------------------------------------
    def open(self) -> tuple[int, int] | None:
        """Connect, then migrate or check the schema (see the adapter's ``migrate`` option).
        Returns (from, to) when this call migrated, else None. Idempotent."""

    def close(self) -> None: ...

    def exists(self) -> bool:
        """Whether the database is there at all, checked without creating it (a SQLite file is
        created on first connect, so a mistyped path must be caught before that)."""

    def monitor(self) -> tuple[Store, bool]:
        """A store for read-only monitoring that never queues behind this one's writes, and
        whether the caller owns it (must close it). It is not opened yet."""

    def migrate(self) -> tuple[int, int]:
        """Bring the schema to SCHEMA_VERSION; return (from, to). Safe with concurrent callers."""

    def schema_version(self) -> int:
        """The version the database is at (0 when bgjobs was never installed there)."""

    def now(self) -> datetime:
        """The store's clock (the database's on Postgres), tz-aware UTC."""

    # producing -------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[NewJob], *, conn: object = None) -> list[Job]:
        """Insert in one transaction; one Job per NewJob, in order. A NewJob whose unique_key an
        earlier job holds gives that job back with ``conflict`` set (its fields replaced first
        when the NewJob asks and the earlier job still waits). ``conn``: the caller's open
        connection to write in, inside the caller's transaction (see ``SharedStore``)."""

    # consuming -------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> list[Job]:
        """Reserve up to ``limit`` due jobs, ordered by priority, available_at, id."""

    def next_due_at(self, queue: str) -> datetime | None:
        """When the earliest unreserved job of ``queue`` becomes due (for sleeping precisely)."""

    def complete(self, completions: Sequence[Completion]) -> list[Applied]:
        """Apply completions in one transaction, in order; one Applied per completion."""

    def extend_leases(
        self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None = None
    ) -> int:
        """Push back lease_expires_at of this node's jobs (all of them, or the given ones)."""

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        """Give unfinished jobs back to their queue without counting the attempt."""

    # nodes and rescue ------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None:
        """Register or refresh this node (its heartbeat_at is set to the store's now)."""

    def remove_node(self, node_id: str) -> None: ...

    def list_nodes(self) -> list[NodeInfo]: ...

    def rescue(self, node_timeout: timedelta) -> RescueResult:
        """Release jobs whose lease ran out; drop nodes silent for longer than node_timeout."""

    # scheduled jobs --------------------------------------------------------------------------
    def register_schedule(self, registration: ScheduleRegistration, queue: str) -> Job | None:
        """Ensure exactly one pending run; return it (None when a run is in progress)."""

    def schedule_states(self) -> list[ScheduleState]: ...

    # operating -------------------------------------------------------------------------------
    def get_job(self, job_id: int) -> Job | None: ...

    def list_jobs(self, where: JobFilter) -> list[Job]: ...

    def queue_stats(self, recent: timedelta) -> list[QueueStats]: ...

    def retry_jobs(
        self, job_ids: Sequence[int] = (), *, all_failed: bool = False, name: str | None = None
    ) -> list[int]:
        """Put finished jobs (failed, discarded, cancelled) back to run now, attempts reset."""

    def cancel_job(self, job_id: int, *, conn: object = None) -> Cancellation:
        """Archive a waiting job as cancelled, or ask the node running it to stop it (it then
        archives it as cancelled); a finished job is left as it is. ``conn`` as for insert_jobs."""

    def cancel_requested(self, node_id: str) -> list[int]:
        """The jobs this node runs that someone asked to cancel."""

    def delete_job(self, job_id: int) -> bool:
        """Delete a waiting or finished job. Raises if running."""

    def prune(self, older_than: timedelta, states: Sequence[JobState]) -> int:
        """Delete archived jobs in ``states`` that finished more than ``older_than`` ago."""

    def prune_keys(self) -> int:
        """Forget unique keys that no job holds any more; how many."""

    # wake-up ---------------------------------------------------------------------------------
    def start_wakeup(
        self,
        on_wake: WakeCallback,
        on_channel: EventCallback,
        on_cancel: CancelCallback | None = None,
    ) -> Wakeup:
        """Start noticing jobs written by other processes, and (``on_cancel``) requests to cancel
        running jobs; calls back from its own thread."""


SCHEDULE_KEY_PREFIX = "schedule:"


def schedule_key(name: str) -> str:
    """The unique_key of a scheduled job's pending run: at most one row can hold it."""
    return SCHEDULE_KEY_PREFIX + name


def hot_state(reserved_by: str | None, available_at: datetime, now: datetime) -> JobState:
    """The state of a row in the hot table, derived rather than stored."""
    if reserved_by is not None:
        return JobState.RUNNING
    return JobState.SCHEDULED if available_at > now else JobState.AVAILABLE


def rescue_error(job: Job, at: datetime) -> JobError:
    return JobError(
        at=at,
        attempt=job.attempt,
        type="JobRescued",
        message=f"node {job.reserved_by} stopped heartbeating before the job finished",
    )
