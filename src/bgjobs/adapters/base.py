"""The Store protocol: the only way the runtime, CLI and tests talk to storage.

A backend is one package under ``bgjobs.adapters`` that owns all of its SQL and implements this
protocol. Both shipped backends do so through ``adapters.shared_store.SharedStore``, which holds
everything but the SQL, and pass the same contract suite (tests/adapters/test_contract.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bgjobs.job import Job, JobError, JobState, NewJob

SCHEMA_VERSION = 2
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
    same attempt and rescue count (a fence), so a job rescued from under a slow node is never
    finished twice."""

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
    # Suspects only (jobs rescued SUSPECT_AFTER times or more), one at a time, for running alone;
    # without it a claim never takes a suspect.
    suspects: bool = False


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
    # The node's liveness lock (NodeLock.key) while it holds one; None: watched by its lease only.
    lock_key: str | None = None


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
    released: list[Job] = field(default_factory=list)  # back to the queue
    failed: list[Job] = field(default_factory=list)  # out of attempts: archived as failed
    errors: dict[int, JobError] = field(default_factory=dict)  # the rescue error, by job id
    next_runs: list[Job] = field(default_factory=list)  # of failed scheduled runs, same transaction
    nodes: list[str] = field(default_factory=list)  # dead nodes removed from the registry


NextRun = Callable[[Job], NewJob | None]
"""The run that follows a scheduled run which ended (None: not a schedule this runtime knows)."""


class NodeLock(Protocol):
    """The lock that shows a node alive for as long as its process lives (``Store.hold_node_lock``).
    Peers that find it free know the node is gone, without waiting for its lease."""

    @property
    def key(self) -> str | None:
        """What the node's registry row records, so peers can probe the lock; None while the lock
        is not held (peers then go by the node's lease alone)."""

    @property
    def problem(self) -> str | None:
        """Why the lock is not held, for the LivenessLost event (None while held)."""

    def release(self) -> None:
        """Let go (at shutdown, after the node left the registry). Idempotent."""


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

    def rescue(self, node_timeout: timedelta, next_run: NextRun | None = None) -> RescueResult:
        """Release jobs whose lease ran out; drop nodes silent for longer than node_timeout.
        A scheduled run failed for good gets its next run (``next_run``) in the same transaction.
        """

    # liveness --------------------------------------------------------------------------------
    liveness_confirm: timedelta
    """How long a peer's liveness lock must be seen free before the peer counts as dead: zero
    where a live process cannot lose its lock, more where a connection can drop and come back."""

    def hold_node_lock(self, node_id: str) -> NodeLock:
        """Take this node's liveness lock, before the node registers. Never raises: a lock that
        cannot be taken has ``key`` None and says why in ``problem``."""

    def free_nodes(self, exclude: str) -> list[str]:
        """Registered nodes (but ``exclude``) whose liveness lock is provably free right now."""

    def rescue_nodes(
        self, node_ids: Sequence[str], next_run: NextRun | None = None
    ) -> RescueResult:
        """For the given nodes whose lock is still free (re-checked in the transaction): release
        or fail their jobs at once, as ``rescue`` does, and remove them from the registry."""

    def suspect_queues(self, queues: Sequence[str], blocking: Sequence[str]) -> set[str]:
        """Which of ``queues`` have a suspect due that a suspect claim could take now (of a
        ``blocking`` queue: only its head, while nothing of it runs)."""

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


SUSPECT_AFTER = 2
"""Rescues after which a job is a suspect: it then runs only alone on its node (ClaimRequest
.suspects), so that a rescue of it can be charged as an attempt. A first rescue is usually not
the job's fault (a deploy's SIGKILL, an OOM kill of a busy node, a lost machine)."""


def rescue_error(job: Job, at: datetime, *, died: bool) -> JobError:
    """The error a rescued job's history gains. ``died``: its node's liveness lock was found
    free (else its lease ran out). Charged as an attempt only if it was running alone."""
    node = job.reserved_by
    cause = (
        f"node {node} died (its liveness lock was released) before the job finished"
        if died
        else f"the lease of node {node} ran out (no heartbeat) before the job finished"
    )
    if is_suspect(job):
        fate = (
            f"it was running alone on that node, so this counts as attempt {job.attempt} "
            f"of {job.max_attempts}"
        )
    else:
        fate = (
            "not counted as an attempt: other jobs may have been running beside it, so the "
            f"crash may not be its fault (rescue {job.rescues + 1}"
            + (
                "; it runs by itself from now on)"
                if job.rescues + 1 >= SUSPECT_AFTER
                else f"; from rescue {SUSPECT_AFTER} on it runs by itself)"
            )
        )
    return JobError(at=at, attempt=job.attempt, type="JobRescued", message=f"{cause}; {fate}")


def is_suspect(job: Job) -> bool:
    """Whether ``job`` was rescued often enough to be claimed only alone."""
    return job.rescues >= SUSPECT_AFTER
