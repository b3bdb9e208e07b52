"""What a backend writes: its statements, bound to one connection (Procrastinate's connector,
River's executor).

Each method runs one named query of the dialect's ``queries`` module (or one batch of it) and
returns records built by ``adapters.rows``. An executor decides nothing: ``SharedStore`` decides
(with ``adapters.decisions``) and calls it inside the transaction the backend gave it. A new
backend implements this protocol, the three connection scopes of ``SharedStore``, and its
lifecycle (connect, migrate, wake-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bgjobs.adapters.base import (
    ClaimRequest,
    Completion,
    JobFilter,
    NodeInfo,
    ProgressUpdate,
    ScheduleRecord,
    ScheduleState,
    WaitingName,
)
from bgjobs.adapters.decisions import GateFacts, KeyHold, Rescued
from bgjobs.job import Job, JobError, JobState, NewJob


class Executor(Protocol):
    def now(self) -> datetime:
        """The backend's clock, as its statements see it (in a transaction: its start)."""

    def lock(self, key: str) -> None:
        """Serialise everyone locking ``key`` until the transaction ends (a no-op where every
        write transaction already excludes all others)."""

    # producing and consuming -------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert in order; a job whose unique_key is taken is skipped (not returned)."""

    def insert_unique(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert in order jobs with unique keys (each key once) and keyless ones, each keyed one
        only if its key is not in the keys table yet (taking it); the inserted ones, in order."""

    def take_over_keys(self, moves: Sequence[tuple[NewJob, int]]) -> list[Job]:
        """For each (job, old holder id): move the job's key from that holder to the job, and
        insert it; the inserted ones, in order (a key that moved meanwhile inserts nothing)."""

    def key_holds(self, keys: Sequence[str]) -> list[KeyHold]:
        """The rows of ``keys`` that exist, each with the job it points at (locked for this
        transaction where rows lock; the holders read after the lock is granted)."""

    def replace_waiting(self, replacements: Sequence[tuple[int, NewJob]]) -> list[Job]:
        """For each (job id, request): set the fields the request replaces, if the job still
        waits; the jobs changed."""

    def key_slice(self, after: str, limit: int) -> list[KeyHold]:
        """Up to ``limit`` keys after ``after``, in key order, whose job is not waiting or
        running with that key (those that may have stopped holding), with their holders."""

    def delete_keys(self, keys: Sequence[KeyHold]) -> int:
        """Forget these keys, each only while it still points at the same job."""

    def claim(self, request: ClaimRequest) -> list[Job]:
        """Reserve up to ``request.limit`` due jobs, in claim order."""

    def claim_blocking(self, request: ClaimRequest) -> list[Job]:
        """Reserve the head of a blocking queue if nothing of that queue is running (and if it
        is a suspect exactly when ``request.suspects``). Called under ``lock`` of the queue, so
        the check and the claim do not interleave."""

    def claim_suspect(self, request: ClaimRequest) -> list[Job]:
        """Reserve the first due suspect of the queue (at most one, of ``request.names``), to run
        it alone."""

    def suspect_queues(
        self, queues: Sequence[str], blocking: Sequence[str]
    ) -> set[tuple[str, str]]:
        """The (queue, name) of the suspects of ``queues`` that ``claim_suspect`` or, for
        ``blocking`` queues, ``claim_blocking`` would take now (given the name)."""

    def next_due(self, queue: str, names: Sequence[str] | None) -> datetime | None:
        """The earliest due time of the queue's unreserved jobs (of ``names``, unless None)."""

    def complete(self, completions: Sequence[Completion]) -> list[bool]:
        """Apply each completion if its fence (id, node, attempt) holds: archive, delete or
        requeue, in order. One bool per completion: whether it applied."""

    def schedule_finished(
        self,
        name: str,
        due_at: datetime,
        outcome: JobState,
        *,
        started_at: datetime | None = None,
        job_id: int | None = None,
    ) -> None:
        """Record a scheduled run's end on its schedule (and free the run slot ``job_id`` held)."""

    def extend_leases(self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None) -> int:
        """Push back the leases of the node's jobs (all of them when ``job_ids`` is None)."""

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]: ...

    def set_progress(self, updates: Sequence[ProgressUpdate]) -> list[int]:
        """Record progress of running jobs whose fence (id, node, attempt) holds; their ids."""

    # nodes and rescue --------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None: ...

    def remove_node(self, node_id: str) -> None: ...

    def list_nodes(self) -> list[NodeInfo]: ...

    def expired(self) -> list[Job]:
        """Reserved jobs whose lease ran out (locked for this transaction where rows lock)."""

    def rescue_release(self, rescued: Sequence[Rescued]) -> None:
        """Back to the queue, due now, each with its rescue error appended and one more rescue
        counted; the attempt given back where the rescue is not charged."""

    def rescue_fail(self, rescued: Sequence[Rescued]) -> None:
        """To the archive as failed, each with its rescue error appended."""

    def forget_nodes(self, silent_for: timedelta) -> None:
        """Delete nodes whose last heartbeat is older than ``silent_for``."""

    def waiting_names(self) -> list[WaitingName]:
        """Due, unreserved jobs counted per (queue, name)."""

    def discard_waiting(self, queue: str, name: str, error: JobError) -> list[Job]:
        """Archive the due, unreserved jobs of (queue, name) as discarded, each with ``error``
        appended under its own attempt; the archived jobs."""

    def free_nodes(self, exclude: str) -> list[str]:
        """Registered nodes (but ``exclude``) whose liveness lock is provably free now."""

    def dead_nodes(self, node_ids: Sequence[str]) -> list[str]:
        """Those of ``node_ids`` still registered whose liveness lock is free, kept from coming
        back until the transaction ends."""

    def jobs_of_nodes(self, node_ids: Sequence[str]) -> list[Job]:
        """The jobs these nodes hold (locked for this transaction where rows lock)."""

    def remove_nodes(self, node_ids: Sequence[str]) -> None: ...

    # scheduled jobs ----------------------------------------------------------------------------
    def by_unique_key(self, unique_key: str) -> Job | None:
        """The hot row holding ``unique_key`` (locked for this transaction where rows lock)."""

    def schedule_upsert(self, name: str, definition: str, queue: str, max_attempts: int) -> None:
        """Register a schedule (or update it; it is no longer removed)."""

    def schedule_states(self) -> list[ScheduleState]: ...

    def schedule_state(self, name: str) -> ScheduleState | None: ...

    def schedule_record(self, records: Sequence[ScheduleRecord]) -> None:
        """Append entries to schedules' histories, stamped with the backend's now."""

    def schedule_history(self, name: str, limit: int) -> list[ScheduleRecord]:
        """Newest first."""

    def schedule_start(self, name: str, job_id: int, *, regular: bool) -> bool:
        """Run ``job_id`` takes the schedule's run slot if no other run holds it (reserved) and,
        when ``regular``, the schedule is not paused; whether it did."""

    def schedule_gate(self, name: str, job_id: int) -> GateFacts | None:
        """What the gate of run ``job_id`` decides on; None when the schedule is not registered."""

    def schedule_pause(self, name: str, paused_at: datetime, until: datetime | None) -> None: ...

    def schedule_resume(self, name: str) -> None: ...

    def schedule_wake(self, name: str) -> None:
        """Make the schedule's runs that wait for its run slot due now."""

    def schedule_publish(self, node_id: str, names: Sequence[str]) -> None: ...

    def schedule_unpublish(self, node_id: str) -> None:
        """Stamp the node's publications with now (it stops)."""

    def schedule_defined(self, name: str, alive_for: timedelta) -> bool:
        """Whether a node alive within ``alive_for`` published ``name`` (or, with no registry
        row, published it or stopped within ``alive_for``)."""

    def schedule_forget_published(self, alive_for: timedelta) -> None:
        """Delete what nodes that are gone published."""

    def schedule_remove_runs(self, name: str) -> list[Job]:
        """Delete the schedule's waiting runs (regular and run-now); return them."""

    def schedule_removed(self, name: str) -> None: ...

    # operating ---------------------------------------------------------------------------------
    def get_hot(self, job_id: int, *, for_update: bool = False) -> Job | None: ...

    def get_archived(self, job_id: int) -> Job | None: ...

    def list_hot(self, where: JobFilter) -> list[Job]:
        """Newest first, at most ``where.limit``; ``where.state`` is a hot state or None."""

    def list_archived(self, where: JobFilter) -> list[Job]:
        """Newest first, at most ``where.limit``; ``where.state`` is a finished state or None."""

    def stats_waiting(self) -> list[tuple[str, int, int]]:
        """(queue, available, scheduled) per queue."""

    def stats_running(self) -> list[tuple[str, str, int]]:
        """(queue, node, running) per queue and node."""

    def stats_failed(self) -> list[tuple[str, int]]:
        """(queue, failed + discarded) per queue."""

    def stats_recent(self, window: timedelta) -> list[tuple[str, str, int]]:
        """(queue, state, count) of jobs finished within ``window``."""

    def retry(self, job_ids: Sequence[int] | None, name: str | None) -> list[int]:
        """Failed, discarded and cancelled jobs (the given ones, or all when None; of ``name``
        when given) back to the queue, due now, attempts reset. Their ids, ascending."""

    def cancel(self, job_id: int) -> Job:
        """Move a waiting job to the archive as cancelled; the archived job."""

    def request_cancel(self, job_id: int) -> Job | None:
        """Flag a running job for its node to stop (None if it is not running)."""

    def cancel_requested(self, node_id: str) -> list[int]:
        """The ids of the node's jobs flagged by ``request_cancel``."""

    def delete_hot(self, job_id: int) -> int: ...

    def delete_archived(self, job_id: int) -> int: ...

    def prune_slice(self, cutoff: datetime, states: Sequence[str], limit: int) -> int:
        """Delete up to ``limit`` archived jobs in ``states`` finished before ``cutoff``."""

    def prune_history_slice(self, cutoff: datetime, results: Sequence[str], limit: int) -> int:
        """Delete up to ``limit`` history entries recorded before ``cutoff`` whose result is in
        ``results`` ("" for entries that are not a run)."""
