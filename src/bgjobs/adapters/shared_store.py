"""The half of every Store that is not SQL: which statements an operation runs, in which scope,
and what to do with their rows. A backend subclasses ``SharedStore`` and supplies an
``Executor`` (its statements) through three connection scopes, plus its lifecycle.

Scopes: ``_reading`` runs reads; ``_writing`` runs one write whose atomicity the executor owns
(one statement, or a transaction it opens); ``_transaction`` makes several executor calls
atomic. SQLite writes always take its write lock; Postgres runs single statements in autocommit,
which is one round trip each on the hot paths (enqueue, claim, complete).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta

from bgjobs.adapters import decisions
from bgjobs.adapters.base import (
    Applied,
    ClaimRequest,
    Completion,
    JobFilter,
    NextRun,
    NodeInfo,
    QueueStats,
    RescueResult,
    ScheduleRegistration,
    ScheduleState,
)
from bgjobs.adapters.executor import Executor
from bgjobs.job import Job, JobState, NewJob

PRUNE_SLICE = 5000  # archived jobs per prune transaction, so a huge prune never blocks for long


class SharedStore(ABC):
    @abstractmethod
    def _reading(self) -> AbstractContextManager[Executor]: ...

    @abstractmethod
    def _writing(self) -> AbstractContextManager[Executor]: ...

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Executor]: ...

    @abstractmethod
    def now(self) -> datetime: ...

    # producing ---------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        with self._writing() as tx:
            return tx.insert_jobs(jobs)

    # consuming ---------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> list[Job]:
        if request.limit <= 0:
            return []
        if request.blocking:
            # Only the head may run, and only when nothing of the queue runs anywhere: the check
            # and the claim must not interleave with another node's.
            with self._transaction() as tx:
                tx.lock(f"queue:{request.queue}")
                return tx.claim_blocking(request)
        with self._writing() as tx:
            return tx.claim_suspect(request) if request.suspects else tx.claim(request)

    def next_due_at(self, queue: str) -> datetime | None:
        with self._reading() as tx:
            return tx.next_due(queue)

    def complete(self, completions: Sequence[Completion]) -> list[Applied]:
        if not completions:
            return []
        follow_up = any(c.job.schedule is not None or c.next_run is not None for c in completions)
        # Without follow-up writes the executor's fenced batch is the whole transaction.
        with self._transaction() if follow_up else self._writing() as tx:
            results: list[Applied] = []
            for completion, applied in zip(completions, tx.complete(completions), strict=True):
                state = decisions.final_state(completion.outcome)
                if not applied or state is None:
                    results.append(Applied(applied=applied))
                    continue
                job = completion.job
                if job.schedule is not None:
                    tx.schedule_finished(job.schedule, job.scheduled_at, state)
                next_run = None
                if completion.next_run is not None:
                    inserted = tx.insert_jobs([completion.next_run])
                    next_run = inserted[0] if inserted else None
                results.append(Applied(applied=True, next_run=next_run))
            return results

    def extend_leases(
        self, node_id: str, lease: timedelta, job_ids: Sequence[int] | None = None
    ) -> int:
        if job_ids is not None and not job_ids:
            return 0
        with self._writing() as tx:
            return tx.extend_leases(node_id, lease, job_ids)

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        if not job_ids:
            return []
        with self._writing() as tx:
            return tx.release(node_id, job_ids)

    # nodes and rescue --------------------------------------------------------------------------
    def heartbeat(self, node: NodeInfo) -> None:
        with self._writing() as tx:
            tx.heartbeat(node)

    def remove_node(self, node_id: str) -> None:
        with self._writing() as tx:
            tx.remove_node(node_id)

    def list_nodes(self) -> list[NodeInfo]:
        with self._reading() as tx:
            return tx.list_nodes()

    def rescue(self, node_timeout: timedelta, next_run: NextRun | None = None) -> RescueResult:
        with self._transaction() as tx:
            result = self._rescue(tx, tx.expired(), next_run, died=False)
            tx.forget_nodes(node_timeout)
        return result

    def free_nodes(self, exclude: str) -> list[str]:
        with self._reading() as tx:
            return tx.free_nodes(exclude)

    def rescue_nodes(
        self, node_ids: Sequence[str], next_run: NextRun | None = None
    ) -> RescueResult:
        if not node_ids:
            return RescueResult()
        with self._transaction() as tx:
            dead = tx.dead_nodes(node_ids)
            if not dead:
                return RescueResult()
            result = self._rescue(tx, tx.jobs_of_nodes(dead), next_run, died=True)
            tx.remove_nodes(dead)
        return replace(result, nodes=dead)

    def _rescue(
        self, tx: Executor, jobs: list[Job], next_run: NextRun | None, *, died: bool
    ) -> RescueResult:
        """Release or fail rescued jobs; a scheduled run failed for good is recorded on its
        schedule and gets its next run in this transaction, as a completion does."""
        if not jobs:
            return RescueResult()
        plan = decisions.plan_rescue(jobs, tx.now(), died=died)
        if plan.release:
            tx.rescue_release(plan.release)
        if plan.fail:
            tx.rescue_fail(plan.fail)
        next_runs: list[Job] = []
        for rescued in plan.fail:
            job = rescued.job
            if job.schedule is not None:
                tx.schedule_finished(job.schedule, job.scheduled_at, JobState.FAILED)
            following = next_run(job) if next_run is not None else None
            if following is not None:
                next_runs += tx.insert_jobs([following])
        return plan.result(next_runs)

    def suspect_queues(self, queues: Sequence[str], blocking: Sequence[str]) -> set[str]:
        if not queues:
            return set()
        with self._reading() as tx:
            return tx.suspect_queues(queues, blocking)

    # scheduled jobs ----------------------------------------------------------------------------
    def register_schedule(self, registration: ScheduleRegistration, queue: str) -> Job | None:
        unique_key = registration.first_run.unique_key
        assert unique_key is not None, "a schedule's run needs its unique key"
        with self._transaction() as tx:
            # Nodes registering the same schedule at once take turns: the decision below reads,
            # then writes.
            tx.lock(f"schedule:{registration.name}")
            # The job row before the schedules row: complete() locks them in that order too
            # (it finishes the run, then updates the schedule), so the two never deadlock.
            pending = tx.by_unique_key(unique_key)
            stored = tx.schedule_definition(registration.name)
            tx.schedule_upsert(registration.name, registration.definition, queue)
            run = decisions.schedule_run(registration, pending, stored)
            if run.remove is not None:
                tx.delete_hot(run.remove)
            if run.insert is None:
                return run.keep
            inserted = tx.insert_jobs([run.insert])
            return inserted[0] if inserted else None

    def schedule_states(self) -> list[ScheduleState]:
        with self._reading() as tx:
            return tx.schedule_states()

    # operating ---------------------------------------------------------------------------------
    def get_job(self, job_id: int) -> Job | None:
        with self._reading() as tx:
            return tx.get_hot(job_id) or tx.get_archived(job_id)

    def list_jobs(self, where: JobFilter) -> list[Job]:
        with self._reading() as tx:
            hot = tx.list_hot(where) if decisions.lists_hot(where.state) else []
            archived = tx.list_archived(where) if decisions.lists_archive(where.state) else []
        return decisions.merge_listings(hot, archived, where.limit)

    def queue_stats(self, recent: timedelta) -> list[QueueStats]:
        with self._reading() as tx:
            return decisions.assemble_stats(
                waiting=tx.stats_waiting(),
                running=tx.stats_running(),
                failed=tx.stats_failed(),
                recent=tx.stats_recent(recent),
            )

    def retry_jobs(
        self, job_ids: Sequence[int] = (), *, all_failed: bool = False, name: str | None = None
    ) -> list[int]:
        if not all_failed and not job_ids:
            return []
        with self._writing() as tx:
            return tx.retry(None if all_failed else job_ids, name)

    def cancel_job(self, job_id: int) -> Job | None:
        with self._transaction() as tx:
            job = tx.get_hot(job_id, for_update=True)
            if job is None:
                return tx.get_archived(job_id)
            if job.reserved_by is not None:
                raise decisions.running_job_error(job_id, job.reserved_by, "cancel")
            return tx.cancel(job_id)

    def delete_job(self, job_id: int) -> bool:
        with self._transaction() as tx:
            job = tx.get_hot(job_id, for_update=True)
            if job is not None and job.reserved_by is not None:
                raise decisions.running_job_error(job_id, job.reserved_by, "delete")
            return tx.delete_hot(job_id) + tx.delete_archived(job_id) > 0

    def prune(self, older_than: timedelta, states: Sequence[JobState]) -> int:
        wanted = decisions.prunable(states)
        if not wanted:
            return 0
        cutoff = self.now() - older_than
        total = 0
        while True:  # in slices, so a huge prune never holds locks for long
            with self._writing() as tx:
                count = tx.prune_slice(cutoff, wanted, PRUNE_SLICE)
            total += count
            if count < PRUNE_SLICE:
                return total
