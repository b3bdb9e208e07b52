"""The Store protocol: the only way the runtime, CLI and tests talk to storage.

A backend is one package under ``bgjobs.adapters`` that owns all of its SQL and implements this
protocol. Both shipped backends do so through ``adapters.shared_store.SharedStore``, which holds
everything but the SQL, and pass the same contract suite (tests/adapters/test_contract.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bgjobs.job import Cancellation, Job, JobError, JobState, NewJob, Progress

SCHEMA_VERSION = 8
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
    same attempt and rescue count (a fence), so a job rescued from under a slow node is never
    finished twice."""

    job: Job
    node_id: str
    outcome: Outcome
    error: JobError | None = None
    delay: timedelta = timedelta(0)
    keep: bool = True  # SUCCEEDED only: False deletes instead of archiving
    next_run: NewJob | None = None  # scheduled jobs: inserted in the same transaction
    # Scheduled jobs: what became of the due times this completion settles besides the run's
    # own (written in the same transaction), and, for a run that never started its handler
    # (paused, or its previous run still going), why it was skipped.
    history: tuple[ScheduleRecord, ...] = ()
    skipped: Occurrence | None = None
    progress: Progress | None = None  # the handler's last report, not yet written: written first


@dataclass(frozen=True)
class Applied:
    """The result of applying a Completion: whether the fence held, and the next run if inserted."""

    applied: bool
    next_run: Job | None = None


@dataclass(frozen=True)
class ProgressUpdate:
    """A running job's progress to record, fenced like a completion on (id, node, attempt)."""

    job_id: int
    node_id: str
    attempt: int
    progress: Progress


@dataclass(frozen=True)
class ClaimRequest:
    queue: str
    node_id: str
    limit: int
    lease: timedelta
    blocking: bool = False  # strict FIFO, one job at a time across all nodes
    # The job names this node has a worker for on ``queue``: jobs of other names are left for
    # a node that can run them. None claims any name (tools and tests).
    names: tuple[str, ...] | None = None
    # Suspects only (jobs rescued SUSPECT_AFTER times or more), one at a time, for running alone;
    # without it a claim never takes a suspect.
    suspects: bool = False


class Occurrence(StrEnum):
    """What became of a scheduled job's due time: each one gets exactly one record."""

    RAN = "ran"  # a run started for it (``result`` says how it ended)
    COALESCED = "coalesced"  # folded into another run (``job_id``), which stands for it
    SKIPPED_MISSED = "skipped_missed"  # dropped by the missed-run policy ``skip``
    SKIPPED_OVERLAP = "skipped_overlap"  # the previous run (``job_id``) was still going
    SKIPPED_PAUSED = "skipped_paused"  # the schedule was paused
    REMOVED = "removed"  # no live node defines the schedule any more


@dataclass(frozen=True)
class ScheduleRecord:
    """One entry of a schedule's history: the outcome of one due time, or of a span of them
    (``due_at`` to ``last_due_at``, ``occurrences`` due times; None when there were too many
    to count). Run-now runs are recorded too (``manual``)."""

    schedule: str
    outcome: Occurrence
    due_at: datetime
    last_due_at: datetime | None = None  # None: one due time
    occurrences: int | None = 1
    # ran: the run; coalesced: the run that stands for them; skipped_overlap: the run that was
    # still going (when known); removed: the run deleted.
    job_id: int | None = None
    node: str | None = None  # ran: the node that ran it
    started_at: datetime | None = None  # ran: when it was claimed
    result: str | None = None  # ran: succeeded, failed or discarded
    manual: bool = False  # a run-now run (or a retried run), not one of the grid
    into_next: bool = False  # written only: job_id is the next run inserted with this record
    id: int | None = None  # read back: its place in the history
    recorded_at: datetime | None = None  # when it was written (ran: when the run ended)

    @property
    def lateness(self) -> timedelta | None:
        """How long after its due time the run started (ran only)."""
        return None if self.started_at is None else self.started_at - self.due_at


class RunGate(StrEnum):
    """Whether a claimed scheduled run may start its handler (decided in the database)."""

    RUN = "run"  # it holds the schedule's run slot now
    PAUSED = "paused"
    BUSY = "busy"  # another run of the schedule is going


@dataclass(frozen=True)
class ScheduleRegistration:
    """Make sure a scheduled job has exactly one pending run.

    ``first_run`` is inserted when there is no pending or running row, and replaces a pending run
    whose stored definition differs from ``definition`` (the schedule changed between deploys).
    A pending run due before ``overdue_before`` is replaced by ``overdue_run`` (the missed-runs
    policy: the latest missed occurrence for coalesce, the next future one for skip), unless the
    schedule is paused; ``missed_records(due)`` are the history of the due times so replaced,
    from the replaced run's ``due`` on. A schedule defined again after it was removed records
    the due times it missed after ``after`` with ``removed_records(after)``. ``max_attempts`` is
    kept for run-now runs.
    """

    name: str
    definition: str
    first_run: NewJob
    overdue_before: datetime | None = None
    overdue_run: NewJob | None = None
    missed_records: Callable[[datetime], tuple[ScheduleRecord, ...]] | None = None
    removed_records: Callable[[datetime], tuple[ScheduleRecord, ...]] | None = None
    max_attempts: int = 1


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
    last_started_at: datetime | None = None
    paused_at: datetime | None = None
    paused_until: datetime | None = None  # None while paused: until resumed
    removed_at: datetime | None = None  # no live node defined it any more
    max_attempts: int = 1
    last_record: ScheduleRecord | None = None  # the newest history entry

    def paused(self, now: datetime) -> bool:
        return schedule_paused(self.paused_at, self.paused_until, now)

    def removed_after(self) -> datetime | None:
        """For a removed schedule, the last due time its history settled (else its removal)."""
        if self.removed_at is None:
            return None
        record = self.last_record
        return self.removed_at if record is None else record.last_due_at or record.due_at


def schedule_paused(paused_at: datetime | None, until: datetime | None, now: datetime) -> bool:
    """A schedule is paused from ``paused_at`` on, until resumed or until ``until`` passes."""
    return paused_at is not None and (until is None or now < until)


@dataclass(frozen=True)
class NodeInfo:
    """A running runtime as the node registry knows it, with what it publishes it can run."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    queues: tuple[str, ...]
    # Per queue it serves, the job names it has a worker for there.
    workers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Per scheduled job it defines, the definition (``Schedule.describe()``).
    schedules: Mapping[str, str] = field(default_factory=dict)
    # The node's liveness lock (NodeLock.key) while it holds one; None: watched by its lease only.
    lock_key: str | None = None

    def runs(self, queue: str, name: str) -> bool:
        """Whether this node claims jobs named ``name`` on ``queue``."""
        return name in self.workers.get(queue, ())


def alive(nodes: Iterable[NodeInfo], now: datetime, node_timeout: timedelta) -> list[NodeInfo]:
    """The nodes that heartbeat within ``node_timeout`` of ``now`` (the registry keeps a dead
    node until a rescuer forgets it)."""
    return [node for node in nodes if node.heartbeat_at >= now - node_timeout]


def queues_running(nodes: Iterable[NodeInfo], name: str) -> list[str]:
    """The queues on which some node in ``nodes`` has a worker for ``name``, sorted."""
    return sorted(
        {queue for node in nodes for queue, names in node.workers.items() if name in names}
    )


def describe_offers(nodes: Iterable[NodeInfo]) -> str:
    """What ``nodes`` run, for messages: ``work: a, b; scheduled: tick``."""
    offered: dict[str, set[str]] = {}
    for node in nodes:
        for queue, names in node.workers.items():
            offered.setdefault(queue, set()).update(names)
    if not offered:
        return "nothing (no live node)"
    return "; ".join(f"{queue}: {', '.join(sorted(offered[queue]))}" for queue in sorted(offered))


@dataclass(frozen=True)
class WaitingName:
    """Due jobs of one name on one queue, waiting to be claimed."""

    queue: str
    name: str
    count: int
    since: datetime  # the earliest due time among them


def unserved(waiting: Iterable[WaitingName], nodes: Sequence[NodeInfo]) -> list[WaitingName]:
    """The waiting jobs that none of ``nodes`` runs: they wait for a worker."""
    return [w for w in waiting if not any(node.runs(w.queue, w.name) for node in nodes)]


@dataclass(frozen=True)
class QueueStats:
    queue: str
    available: int
    scheduled: int
    running: int
    failed: int  # failed + discarded, all time (until pruned)
    succeeded_recent: int  # finished in the window given to ``queue_stats``
    failed_recent: int
    # ``running`` by node id, from the same read (a node's busy slots never disagree with it)
    running_by_node: Mapping[str, int] = field(default_factory=dict)


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


@dataclass(frozen=True)
class FollowUp:
    """What a scheduled run's completion (or its rescue, failing it for good) writes besides the
    run's own record: the next run, and the history of the other due times it settles."""

    next_run: NewJob | None = None
    history: tuple[ScheduleRecord, ...] = ()


FollowUpOf = Callable[[Job], FollowUp]
"""What follows a scheduled run which ended (nothing: not a schedule this runtime knows)."""


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
    def insert_jobs(self, jobs: Sequence[NewJob], *, conn: object = None) -> list[Job]:
        """Insert in one transaction; one Job per NewJob, in order. A NewJob whose unique_key an
        earlier job holds gives that job back with ``conflict`` set (its fields replaced first
        when the NewJob asks and the earlier job still waits). ``conn``: the caller's open
        connection to write in, inside the caller's transaction (see ``SharedStore``)."""

    # consuming -------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> list[Job]:
        """Reserve up to ``limit`` due jobs, ordered by priority, available_at, id."""

    def next_due_at(self, queue: str, names: Sequence[str] | None = None) -> datetime | None:
        """When the earliest unreserved job of ``queue`` becomes due (for sleeping precisely);
        with ``names``, the earliest of those names (what a claim with them would take)."""

    def complete(self, completions: Sequence[Completion]) -> list[Applied]:
        """Apply completions in one transaction, in order; one Applied per completion."""

    def extend_leases(
        self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None = None
    ) -> int:
        """Push back lease_expires_at of this node's jobs (all of them, or the given ones)."""

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        """Give unfinished jobs back to their queue without counting the attempt."""

    def set_progress(self, updates: Sequence[ProgressUpdate]) -> list[int]:
        """Record running jobs' progress in one statement; the ids whose fence held. A row being
        finished at the same moment is skipped (its completion carries its last progress)."""

    # nodes and rescue ------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None:
        """Register or refresh this node (its heartbeat_at is set to the store's now)."""

    def remove_node(self, node_id: str) -> None: ...

    def list_nodes(self) -> list[NodeInfo]: ...

    def rescue(self, node_timeout: timedelta, follow_up: FollowUpOf | None = None) -> RescueResult:
        """Release jobs whose lease ran out; drop nodes silent for longer than node_timeout.
        A scheduled run failed for good is settled on its schedule as a completion would be:
        its history, and what ``follow_up`` says comes next, in the same transaction."""

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
        self, node_ids: Sequence[str], follow_up: FollowUpOf | None = None
    ) -> RescueResult:
        """For the given nodes whose lock is still free (re-checked in the transaction): release
        or fail their jobs at once, as ``rescue`` does, and remove them from the registry."""

    def suspect_queues(
        self,
        queues: Sequence[str],
        blocking: Sequence[str],
        names: Mapping[str, Sequence[str]] | None = None,
    ) -> set[str]:
        """Which of ``queues`` have a suspect due that a suspect claim could take now (of a
        ``blocking`` queue: only its head, while nothing of it runs), counting on a queue of
        ``names`` only the suspects of its names there (the claim's ``names``)."""

    def waiting_names(self) -> list[WaitingName]:
        """Due, unclaimed jobs counted per (queue, name), sorted (to find names nobody runs)."""

    def discard_unserved(self, queue: str, name: str, error: JobError) -> list[Job]:
        """Archive as discarded the due, unclaimed jobs named ``name`` on ``queue``, each with
        ``error`` appended (its attempt set to the job's), unless a registered node runs that
        name there by now. Returns the archived jobs."""

    # scheduled jobs --------------------------------------------------------------------------
    def register_schedule(self, registration: ScheduleRegistration, queue: str) -> Job | None:
        """Ensure exactly one pending run; return it (None when a run is in progress)."""

    def schedule_states(self) -> list[ScheduleState]: ...

    def schedule_state(self, name: str) -> ScheduleState | None: ...

    def publish_schedules(self, node_id: str, names: Sequence[str]) -> None:
        """Record which schedules this node defines (read when deciding a schedule is gone)."""

    def unpublish_schedules(self, node_id: str) -> None:
        """A node stops: what it published counts for one more ``alive_for`` from now."""

    def retire_schedule(self, name: str, alive_for: timedelta) -> list[Job] | None:
        """If no node defines ``name`` that beat within ``alive_for`` (or, without a registry
        row, published or stopped within it), remove its waiting runs and mark it removed;
        return the runs removed. None when it is still defined, already removed, or a run of it
        is going."""

    def begin_scheduled_run(self, job: Job) -> RunGate:
        """Before a claimed scheduled run starts its handler: RUN (it now holds the schedule's
        run slot), PAUSED, or BUSY (another run of the schedule is going, on any node)."""

    def schedule_history(self, name: str, limit: int) -> list[ScheduleRecord]:
        """The newest ``limit`` history entries of a schedule, newest first."""

    def pause_schedule(self, name: str, until: datetime | None) -> ScheduleState | None:
        """Pause a schedule (until resumed, or until ``until``); None when there is none."""

    def resume_schedule(self, name: str) -> ScheduleState | None: ...

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
RUN_NOW_KEY_PREFIX = "schedule-now:"


def schedule_key(name: str) -> str:
    """The unique_key of a scheduled job's pending run: at most one row can hold it."""
    return SCHEDULE_KEY_PREFIX + name


def run_now_key(name: str) -> str:
    """The unique_key of a schedule's run-now run: one waits at a time, beside the regular run."""
    return RUN_NOW_KEY_PREFIX + name


def is_regular_run(job: Job) -> bool:
    """A run on the schedule's grid (not a run-now run or a retried run of it)."""
    return job.schedule is not None and job.unique_key == schedule_key(job.schedule)


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
