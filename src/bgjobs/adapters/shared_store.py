"""The half of every Store that is not SQL: which statements an operation runs, in which scope,
and what to do with their rows. A backend subclasses ``SharedStore`` and supplies an
``Executor`` (its statements) through three connection scopes, plus its lifecycle.

Scopes: ``_reading`` runs reads; ``_writing`` runs one write whose atomicity the executor owns
(one statement, or a transaction it opens); ``_transaction`` makes several executor calls
atomic. SQLite writes always take its write lock; Postgres runs single statements in autocommit,
which is one round trip each on the hot paths (enqueue, claim, complete). ``_caller`` runs in
the caller's own transaction on the caller's connection (enqueue and cancel with ``conn=``):
bgjobs then never begins, commits or rolls back, so what it wrote exists only if the caller
commits, and the backend refuses a connection that is not inside a transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta
from operator import attrgetter

from bgjobs.adapters import decisions
from bgjobs.adapters.base import (
    Applied,
    ClaimRequest,
    Completion,
    FollowUp,
    FollowUpOf,
    JobFilter,
    NodeInfo,
    Outcome,
    ProgressUpdate,
    QueueStats,
    RescueResult,
    RunGate,
    ScheduleRecord,
    ScheduleRegistration,
    ScheduleState,
    WaitingName,
    is_regular_run,
    schedule_key,
)
from bgjobs.adapters.executor import Executor
from bgjobs.errors import RuntimeStateError
from bgjobs.job import Cancellation, CancelOutcome, Conflict, Job, JobError, JobState, NewJob

PRUNE_SLICE = 5000  # archived jobs per prune transaction, so a huge prune never blocks for long
_GATE_ATTEMPTS = 5  # a run's gate tries again when the slot was freed in between
KEY_SLICE = 1000  # unique keys looked at per transaction when forgetting those nobody holds
# Rounds of "insert, else read the key's holder": a second one is needed only when the key row
# was forgotten (prune_keys) between the two.
KEY_ROUNDS = 5
_unique_key = attrgetter("unique_key")  # never empty when set


class SharedStore(ABC):
    @abstractmethod
    def _reading(self) -> AbstractContextManager[Executor]: ...

    @abstractmethod
    def _writing(self) -> AbstractContextManager[Executor]: ...

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Executor]: ...

    @abstractmethod
    def _caller(self, conn: object) -> AbstractContextManager[Executor]:
        """The caller's connection, checked (same database, inside a transaction)."""

    @abstractmethod
    def now(self) -> datetime: ...

    def _write_scope(self, conn: object, *, atomic: bool) -> AbstractContextManager[Executor]:
        if conn is not None:
            return self._caller(conn)
        return self._transaction() if atomic else self._writing()

    # producing ---------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[NewJob], *, conn: object = None) -> list[Job]:
        if not jobs:
            return []
        if not any(map(_unique_key, jobs)):  # C speed: plain enqueues pay almost nothing
            with self._write_scope(conn, atomic=False) as tx:
                return tx.insert_jobs(jobs)
        with self._write_scope(conn, atomic=True) as tx:
            return insert_with_keys(tx, jobs)

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

    def next_due_at(self, queue: str, names: Sequence[str] | None = None) -> datetime | None:
        with self._reading() as tx:
            return tx.next_due(queue, names)

    def complete(self, completions: Sequence[Completion]) -> list[Applied]:
        if not completions:
            return []
        follow_up = any(
            c.job.schedule is not None or c.next_run is not None or c.progress is not None
            for c in completions
        )
        # Without follow-up writes the executor's fenced batch is the whole transaction.
        with self._transaction() if follow_up else self._writing() as tx:
            progress = decisions.final_progress(completions)
            if progress:  # before the fenced finish, so the archived row keeps it
                tx.set_progress(progress)
            results: list[Applied] = []
            for completion, applied in zip(completions, tx.complete(completions), strict=True):
                state = decisions.final_state(completion.outcome)
                if not applied or state is None:
                    results.append(Applied(applied=applied))
                    continue
                next_run = None
                if completion.next_run is not None:
                    next_run = _inserted(insert_with_keys(tx, [completion.next_run])[0])
                if completion.job.schedule is not None:
                    _settle_scheduled_run(tx, completion, state, next_run)
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

    def set_progress(self, updates: Sequence[ProgressUpdate]) -> list[int]:
        if not updates:
            return []
        with self._writing() as tx:
            return tx.set_progress(updates)

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

    def rescue(self, node_timeout: timedelta, follow_up: FollowUpOf | None = None) -> RescueResult:
        with self._transaction() as tx:
            result = self._rescue(tx, tx.expired(), follow_up, died=False)
            tx.forget_nodes(node_timeout)
        return result

    def free_nodes(self, exclude: str) -> list[str]:
        with self._reading() as tx:
            return tx.free_nodes(exclude)

    def rescue_nodes(
        self, node_ids: Sequence[str], follow_up: FollowUpOf | None = None
    ) -> RescueResult:
        if not node_ids:
            return RescueResult()
        with self._transaction() as tx:
            dead = tx.dead_nodes(node_ids)
            if not dead:
                return RescueResult()
            result = self._rescue(tx, tx.jobs_of_nodes(dead), follow_up, died=True)
            tx.remove_nodes(dead)
        return replace(result, nodes=dead)

    def _rescue(
        self, tx: Executor, jobs: list[Job], follow_up: FollowUpOf | None, *, died: bool
    ) -> RescueResult:
        """Release or fail rescued jobs; a scheduled run failed for good is settled on its
        schedule (state, run slot, history) and gets its next run in this transaction, as its
        completion would."""
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
            if job.schedule is None:
                continue
            follow = follow_up(job) if follow_up is not None else FollowUp()
            inserted = tx.insert_jobs([follow.next_run]) if follow.next_run is not None else []
            next_runs += inserted
            completion = Completion(
                job,
                job.reserved_by or "",
                Outcome.FAILED,
                error=rescued.error,
                next_run=follow.next_run,
                history=follow.history,
            )
            _settle_scheduled_run(tx, completion, JobState.FAILED, next(iter(inserted), None))
        return plan.result(next_runs)

    def suspect_queues(
        self,
        queues: Sequence[str],
        blocking: Sequence[str],
        names: Mapping[str, Sequence[str]] | None = None,
    ) -> set[str]:
        if not queues:
            return set()
        with self._reading() as tx:
            found = tx.suspect_queues(queues, blocking)
        claims = names or {}
        return {queue for queue, name in found if queue not in claims or name in claims[queue]}

    def waiting_names(self) -> list[WaitingName]:
        with self._reading() as tx:
            return tx.waiting_names()

    def discard_unserved(self, queue: str, name: str, error: JobError) -> list[Job]:
        with self._transaction() as tx:
            # The caller decided from the registry a moment ago; a node that registered since
            # with this worker gets the jobs instead.
            if any(node.runs(queue, name) for node in tx.list_nodes()):
                return []
            return tx.discard_waiting(queue, name, error)

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
            stored = tx.schedule_state(registration.name)
            tx.schedule_upsert(
                registration.name, registration.definition, queue, registration.max_attempts
            )
            run = decisions.schedule_run(
                registration,
                pending,
                stored.definition if stored else None,
                paused=stored is not None and stored.paused(tx.now()),
                removed_after=stored.removed_after() if stored else None,
            )
            if run.remove is not None:
                tx.delete_hot(run.remove)
            if run.insert is None:
                return run.keep
            new_run = _inserted(insert_with_keys(tx, [run.insert])[0])
            if run.records:
                tx.schedule_record(decisions.resolve_records(run.records, new_run))
            return new_run

    def schedule_states(self) -> list[ScheduleState]:
        with self._reading() as tx:
            return tx.schedule_states()

    def schedule_state(self, name: str) -> ScheduleState | None:
        with self._reading() as tx:
            return tx.schedule_state(name)

    def publish_schedules(self, node_id: str, names: Sequence[str]) -> None:
        if names:
            with self._writing() as tx:
                tx.schedule_publish(node_id, names)

    def unpublish_schedules(self, node_id: str) -> None:
        with self._writing() as tx:
            tx.schedule_unpublish(node_id)

    def retire_schedule(self, name: str, alive_for: timedelta) -> list[Job] | None:
        with self._transaction() as tx:
            tx.lock(f"schedule:{name}")
            tx.schedule_forget_published(alive_for)
            pending = tx.by_unique_key(schedule_key(name))
            state = tx.schedule_state(name)
            if not decisions.retires(pending, tx.schedule_defined(name, alive_for), state):
                return None
            removed = tx.schedule_remove_runs(name)
            tx.schedule_removed(name)
            records = decisions.removed_records(removed, tx.now())
            if records:
                tx.schedule_record(records)
            return removed

    def begin_scheduled_run(self, job: Job) -> RunGate:
        name = job.schedule
        assert name is not None, "only scheduled runs pass the gate"
        regular = is_regular_run(job)
        # Taking the slot is one statement, on the way to every scheduled handler; only a
        # refusal reads why. A slot freed between the two is taken on the next round.
        for _ in range(_GATE_ATTEMPTS):
            with self._writing() as tx:
                if tx.schedule_start(name, job.id, regular=regular):
                    return RunGate.RUN
            with self._reading() as tx:
                facts = tx.schedule_gate(name, job.id)
            if facts is None:
                return RunGate.RUN  # never registered: nothing to respect
            gate = decisions.run_gate(facts, regular=regular)
            if gate is not RunGate.RUN:
                return gate
        return RunGate.BUSY

    def schedule_history(self, name: str, limit: int) -> list[ScheduleRecord]:
        with self._reading() as tx:
            return tx.schedule_history(name, limit)

    def pause_schedule(self, name: str, until: datetime | None) -> ScheduleState | None:
        with self._transaction() as tx:
            state = tx.schedule_state(name)
            if state is None:
                return None
            now = tx.now()
            # Pausing again only moves the end; the pause keeps the time it began.
            began = state.paused_at if state.paused_at and state.paused(now) else now
            tx.schedule_pause(name, began, until)
            return tx.schedule_state(name)

    def resume_schedule(self, name: str) -> ScheduleState | None:
        with self._transaction() as tx:
            tx.schedule_resume(name)
            return tx.schedule_state(name)

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

    def cancel_job(self, job_id: int, *, conn: object = None) -> Cancellation:
        with self._write_scope(conn, atomic=True) as tx:
            job = tx.get_hot(job_id, for_update=True)
            if job is None:
                finished = tx.get_archived(job_id)
                outcome = CancelOutcome.NOT_FOUND if finished is None else CancelOutcome.FINISHED
                return Cancellation(outcome, finished)
            if job.reserved_by is None:
                return Cancellation(CancelOutcome.CANCELLED, tx.cancel(job_id))
            flagged = tx.request_cancel(job_id)
            assert flagged is not None, "the running row is locked by this transaction"
            return Cancellation(CancelOutcome.REQUESTED, flagged)

    def cancel_requested(self, node_id: str) -> list[int]:
        with self._reading() as tx:
            return tx.cancel_requested(node_id)

    def delete_job(self, job_id: int) -> bool:
        with self._transaction() as tx:
            job = tx.get_hot(job_id, for_update=True)
            if job is not None and job.reserved_by is not None:
                raise decisions.running_job_error(job_id, job.reserved_by)
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
                break
        # Schedules' histories follow the same retention (counted apart: they are not jobs).
        history = decisions.prunable_history(states)
        while True:
            with self._writing() as tx:
                count = tx.prune_history_slice(cutoff, history, PRUNE_SLICE)
            if count < PRUNE_SLICE:
                return total

    def prune_keys(self) -> int:
        forgotten = 0
        after = ""
        while True:  # in slices, each its own transaction
            with self._transaction() as tx:
                keys = tx.key_slice(after, KEY_SLICE)
                now = tx.now()
                stale = [key for key in keys if not decisions.key_taken(key, now)]
                if stale:
                    forgotten += tx.delete_keys(stale)
            if len(keys) < KEY_SLICE:
                return forgotten
            after = keys[-1].key


def _settle_scheduled_run(
    tx: Executor, completion: Completion, state: JobState, next_run: Job | None
) -> None:
    """Within a completion's transaction: a wake-up for runs waiting for the run slot, the
    schedule's state and run slot, and the history of the due times this completion settles.
    Job rows before the schedule's row, the order registration locks them in too."""
    job = completion.job
    name = job.schedule
    assert name is not None
    tx.schedule_wake(name)
    if completion.skipped is None:
        tx.schedule_finished(
            name, job.scheduled_at, state, started_at=job.reserved_at, job_id=job.id
        )
    ran = decisions.ran_record(completion, state)
    tx.schedule_record([ran, *decisions.resolve_records(completion.history, next_run)])


def insert_with_keys(tx: Executor, requests: Sequence[NewJob]) -> list[Job]:
    """Insert ``requests``, some with unique keys, in one transaction; one Job per request, in
    order. The keys table decides who gets a key: a request whose key is taken reads the key's
    holder under its lock and takes the key over when the holder no longer holds it, else gets
    the holder back with ``conflict`` set (its fields replaced first, when asked and it waits)."""
    batch = decisions.unique_batch(requests)
    done: dict[int, Job] = {}  # index in batch.jobs -> what it became
    waiting = dict(enumerate(batch.jobs))
    for _ in range(KEY_ROUNDS):
        lost = _place(tx.insert_unique(list(waiting.values())), waiting, done)
        if lost:
            _settle(tx, batch.jobs, lost, done)
        waiting = {index: batch.jobs[index] for index in lost.values()}
        if not waiting:
            break
    else:
        raise RuntimeStateError(
            f"could not settle unique keys {sorted(lost)} after {KEY_ROUNDS} rounds; "
            "retry the enqueue"
        )
    return [
        done[index] if conflict is None else replace(done[index], conflict=conflict)
        for index, conflict in zip(batch.became, batch.conflicts, strict=True)
    ]


def _settle(tx: Executor, jobs: list[NewJob], lost: dict[str, int], done: dict[int, Job]) -> None:
    """Settle the requests whose keys were taken (``lost``: key -> index in ``jobs``); what is
    left in ``lost`` lost its key row meanwhile and is inserted again."""
    keys = {key.key: key for key in tx.key_holds(sorted(lost))}
    now = tx.now() if decisions.judged_by_time(keys.values()) else None
    plan = decisions.plan_keys((jobs[i] for i in lost.values()), keys, now)
    for job in tx.take_over_keys(plan.take_over) if plan.take_over else ():
        assert job.unique_key is not None
        done[lost.pop(job.unique_key)] = job
    replaced = {job.id: job for job in tx.replace_waiting(plan.replace)} if plan.replace else {}
    for holder_id, new in plan.replace:
        assert new.unique_key is not None
        holder = replaced.get(holder_id)
        conflict: Conflict = "kept" if holder is None else "replaced"  # None: claimed meanwhile
        holder = holder or keys[new.unique_key].holder
        assert holder is not None
        done[lost.pop(new.unique_key)] = replace(holder, conflict=conflict)
    for key, holder in plan.keep.items():
        done[lost.pop(key)] = replace(holder, conflict="kept")


def _place(inserted: list[Job], waiting: dict[int, NewJob], done: dict[int, Job]) -> dict[str, int]:
    """Record the inserted jobs against the requests they came from; the keys (-> request index)
    that were taken already."""
    by_key = {job.unique_key: job for job in inserted if job.unique_key is not None}
    plain = iter([job for job in inserted if job.unique_key is None])
    lost: dict[str, int] = {}
    for index, new in waiting.items():
        if new.unique_key is None:
            done[index] = next(plain)
        elif new.unique_key in by_key:
            done[index] = by_key[new.unique_key]
        else:
            lost[new.unique_key] = index
    return lost


def _inserted(job: Job) -> Job | None:
    """A job just inserted, or None when the request met an earlier job holding its key."""
    return None if job.duplicate else job
