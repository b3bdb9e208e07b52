"""The Store protocol: the only way the runtime, CLI and tests talk to storage.

A backend is one package under ``bgjobs.adapters`` that owns all of its SQL and implements this
protocol. Both shipped backends do so through ``adapters.shared_store.SharedStore``, which holds
everything but the SQL, and pass the same contract suite (tests/adapters/test_contract.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bgjobs.job import Job, JobError, JobState, NewJob

SCHEMA_VERSION = 1
"""The schema version this release of bgjobs reads and writes."""


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"  # archive (or delete) the job
    RETRY = "retry"  # back to the queue after ``delay``; the attempt counts
    FAILED = "failed"  # out of attempts: archive as failed
    DISCARDED = "discarded"  # failed on purpose or poison input: archive as discarded
    SNOOZED = "snoozed"  # back to the queue after ``delay``; the attempt does not count


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


class Wakeup(Protocol):
    """A running channel that calls back when jobs may be waiting (queue name, or None = all)."""

    def stop(self) -> None: ...


WakeCallback = Callable[[str | None], None]
EventCallback = Callable[[str, str | None], None]  # (kind: "lost"|"restored", error)


class Store(Protocol):
    backend: str
    display_url: str  # for humans; credentials masked

    # lifecycle -----------------------------------------------------------------------------
    def open(self) -> tuple[int, int] | None:
        """Connect, then migrate or check the schema (see the adapter's ``migrate`` option).
        Returns (from, to) when this call migrated, else None. Idempotent."""

    def close(self) -> None:
        """Release what the store opened (connections, the pool it created, their threads; never
        a pool the caller passed in). A later call opens it again."""

    def give_up_after(self, seconds: float | None) -> None:
        """From now on, no call waits for the database (a lock, a pooled connection, a blocked
        statement) past ``seconds`` from now: it fails instead. None, or ``close()``, lifts the
        limit. Shutdown uses it, so that it ends whatever holds the database."""

    def upkeep(self) -> None:
        """Housekeeping the database may not do well enough by itself; every node's runtime
        calls it every few seconds, apart from its heartbeat. Postgres vacuums the hot table
        when dead rows pile up faster than autovacuum removes them (see postgres/vacuum.py)."""

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
    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert in one transaction. A job whose unique_key is taken is skipped (not returned)."""

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

    def cancel_job(self, job_id: int) -> Job | None:
        """Archive a waiting job as cancelled. Returns None if absent; raises if running."""

    def delete_job(self, job_id: int) -> bool:
        """Delete a waiting or finished job. Raises if running."""

    def prune(self, older_than: timedelta, states: Sequence[JobState]) -> int:
        """Delete archived jobs in ``states`` that finished more than ``older_than`` ago."""

    # wake-up ---------------------------------------------------------------------------------
    def start_wakeup(self, on_wake: WakeCallback, on_channel: EventCallback) -> Wakeup:
        """Start noticing jobs written by other processes; calls ``on_wake`` from its own thread."""


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
