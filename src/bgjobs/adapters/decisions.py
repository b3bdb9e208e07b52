"""The decisions every store makes, made once: pure functions over records, no SQL.

A backend's statements only apply what was decided here (River's split: decide above the
driver, apply below it), so there is no policy to keep in step between dialects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    Completion,
    Occurrence,
    Outcome,
    ProgressUpdate,
    QueueStats,
    RescueResult,
    RunGate,
    ScheduleRecord,
    ScheduleRegistration,
    ScheduleState,
    is_regular_run,
    is_suspect,
    rescue_error,
)
from bgjobs.errors import RuntimeStateError, SchemaError
from bgjobs.job import Conflict, Job, JobError, JobState, NewJob, UniqueHold

# completing ---------------------------------------------------------------------------------
_FINAL_STATE = {
    Outcome.SUCCEEDED: JobState.SUCCEEDED,
    Outcome.FAILED: JobState.FAILED,
    Outcome.DISCARDED: JobState.DISCARDED,
    Outcome.CANCELLED: JobState.CANCELLED,
}


def final_state(outcome: Outcome) -> JobState | None:
    """The archive state an outcome finishes a job in; None when the job goes back to its queue
    (retry: the attempt counts; snoozed: it does not)."""
    return _FINAL_STATE.get(outcome)


def keeps_record(completion: Completion) -> bool:
    """Whether a finished job is archived (always, but for a success with ``keep=False``)."""
    return completion.keep or completion.outcome is not Outcome.SUCCEEDED


def final_progress(completions: Sequence[Completion]) -> list[ProgressUpdate]:
    """The progress completions carry (a handler's last report, not yet written)."""
    return [
        ProgressUpdate(c.job.id, c.node_id, c.job.attempt, c.progress)
        for c in completions
        if c.progress is not None
    ]


# scheduled jobs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleRun:
    """What registering a schedule does: keep a run, or delete one and insert another."""

    keep: Job | None = None  # the pending run stays (None while a run is in progress)
    remove: int | None = None  # the id of a pending run to delete first
    insert: NewJob | None = None  # the run to insert

    records: tuple[ScheduleRecord, ...] = ()  # history of the due times a replacement settles


def schedule_run(
    registration: ScheduleRegistration,
    pending: Job | None,
    stored_definition: str | None,
    *,
    paused: bool = False,
    removed_after: datetime | None = None,
) -> ScheduleRun:
    """Decide a schedule's one pending run from the row holding its unique key (``pending``) and
    the definition stored by the last registration (None the first time). A paused schedule
    keeps an overdue run: the node that claims it records it as skipped while paused. A
    schedule removed (its last recorded due time ``removed_after``) and now defined again
    records the due times it missed as removed."""
    first = registration.first_run
    if pending is None:
        removed = registration.removed_records
        if removed_after is not None and removed is not None:
            return ScheduleRun(insert=first, records=removed(removed_after))
        return ScheduleRun(insert=first)
    if pending.reserved_by is not None:
        return ScheduleRun()  # running: its completion inserts the next run
    changed = stored_definition is not None and stored_definition != registration.definition
    if changed or pending.queue != first.queue:
        return ScheduleRun(remove=pending.id, insert=first)
    overdue = (
        registration.overdue_before is not None
        and pending.available_at < registration.overdue_before
        and pending.attempt == 0  # a run in retry backoff keeps its attempts
        and not paused
    )
    if overdue and registration.overdue_run is not None:
        missed = registration.missed_records
        return ScheduleRun(
            remove=pending.id,
            insert=registration.overdue_run,
            records=missed(pending.scheduled_at) if missed is not None else (),
        )
    return ScheduleRun(keep=pending)


@dataclass(frozen=True)
class GateFacts:
    """What a schedule's gate decides on: is it paused, and is another run holding its run slot
    (``busy``: reserved by a node right now)."""

    paused: bool
    busy: bool


def run_gate(facts: GateFacts, *, regular: bool) -> RunGate:
    """Whether a claimed run of a schedule may start: a regular run not while the schedule is
    paused (a run-now run was asked for explicitly), and no run while another of its runs is
    going. (SCHEDULE_START applies the same rule as the fence of its one statement.)"""
    if facts.paused and regular:
        return RunGate.PAUSED
    return RunGate.BUSY if facts.busy else RunGate.RUN


def ran_record(completion: Completion, state: JobState) -> ScheduleRecord:
    """The history entry of a scheduled run that ended (or was skipped before its handler)."""
    job = completion.job
    assert job.schedule is not None
    if completion.skipped is not None:  # its row goes: nothing to point at
        return ScheduleRecord(
            schedule=job.schedule,
            outcome=completion.skipped,
            due_at=job.scheduled_at,
            manual=not is_regular_run(job),
        )
    return ScheduleRecord(
        schedule=job.schedule,
        outcome=Occurrence.RAN,
        due_at=job.scheduled_at,
        job_id=job.id,
        node=completion.node_id,
        started_at=job.reserved_at,
        result=state.value,
        manual=not is_regular_run(job),
    )


def resolve_records(
    records: Iterable[ScheduleRecord], next_run: Job | None
) -> list[ScheduleRecord]:
    """Records that point at "the next run inserted with them" get its id (or none, when the
    insert found the key taken)."""
    return [
        replace(r, job_id=next_run.id if next_run else None, into_next=False) if r.into_next else r
        for r in records
    ]


def retires(pending: Job | None, defined: bool, state: ScheduleState | None) -> bool:
    """Whether a schedule no live node defines is removed now: not while a run of it is going
    (the node running it will finish it), and only once."""
    if defined or state is None or state.removed_at is not None:
        return False
    return pending is None or pending.reserved_by is None


def removed_records(runs: Iterable[Job], now: datetime) -> list[ScheduleRecord]:
    """History for the runs removed with their schedule: a due time that had come is settled
    as removed (one still ahead was never an occurrence)."""
    return [
        ScheduleRecord(
            schedule=job.schedule or job.name,
            outcome=Occurrence.REMOVED,
            due_at=job.scheduled_at,
            job_id=job.id,
            manual=not is_regular_run(job),
        )
        for job in runs
        if job.scheduled_at <= now
    ]


# unique keys --------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyHold:
    """A unique key's row (locked for the transaction where rows lock) and the job it points at,
    read after the lock was granted (None when that job is gone: deleted or pruned)."""

    key: str
    job_id: int
    hold: UniqueHold
    holder: Job | None


def judged_by_time(keys: Iterable[KeyHold]) -> bool:
    """Whether ``key_taken`` needs the time for any of ``keys`` (a finished holder whose hold
    lasts a period), so that the clock is read only then."""
    return any(
        k.holder is not None and k.holder.state.is_finished and k.hold.period is not None
        for k in keys
    )


def key_taken(key: KeyHold, now: datetime | None) -> bool:
    """Whether ``key`` still keeps a new job with the same key out. Judged on the holder as it is
    now, so a job that finishes, fails for good, is discarded or cancelled frees its key at once
    (unless its hold keeps that state), and one rescued back to its queue keeps it."""
    holder = key.holder
    if holder is None or holder.id != key.job_id or holder.unique_key != key.key:
        return False  # gone, or retried (a retried job comes back without its key)
    if holder.state is JobState.RUNNING:
        return key.hold.while_running
    if not holder.state.is_finished:
        return True  # waiting
    if holder.state not in key.hold.after:
        return False
    period = key.hold.period
    if period is None:
        return True
    assert now is not None, "judged_by_time() says when the time is needed"
    finished = holder.finished_at
    return finished is not None and finished + period > now


@dataclass(frozen=True)
class UniqueBatch:
    """A batch with each unique key once: ``jobs`` to insert (keyless ones, and the first request
    of each key with later replacing requests folded in), and for each request given, the index
    in ``jobs`` it became and how it met an earlier request of its key (None: it is the first)."""

    jobs: list[NewJob]
    became: list[int]
    conflicts: list[Conflict | None]


def unique_batch(requests: Sequence[NewJob]) -> UniqueBatch:
    """Uniqueness within a batch: a later request of a key is a duplicate of the first."""
    jobs: list[NewJob] = []
    became: list[int] = []
    conflicts: list[Conflict | None] = []
    first_of: dict[str, int] = {}
    for new in requests:
        key = new.unique_key
        if key is None or key not in first_of:
            if key is not None:
                first_of[key] = len(jobs)
            became.append(len(jobs))
            conflicts.append(None)
            jobs.append(new)
            continue
        index = first_of[key]
        if new.replace:
            jobs[index] = replaced_by(jobs[index], new)
        became.append(index)
        conflicts.append("replaced" if new.replace else "kept")
    return UniqueBatch(jobs, became, conflicts)


def replaced_by(earlier: NewJob, later: NewJob) -> NewJob:
    """``earlier`` with the fields ``later`` replaces (its ``replace``), as if the two were
    enqueued one after the other: against an earlier job in the table it then replaces the
    fields either asked to replace."""
    fields: dict[str, object] = {"replace": earlier.replace | later.replace}
    if "payload" in later.replace:
        fields["raw_payload"] = later.raw_payload
    if "run_at" in later.replace:
        fields.update(available_at=later.available_at, delay=later.delay)
    if "priority" in later.replace:
        fields["priority"] = later.priority
    return replace(earlier, **fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class KeyPlan:
    """What to do with requests whose key was already in the keys table."""

    take_over: list[tuple[NewJob, int]] = field(default_factory=list)  # (request, old holder id)
    replace: list[tuple[int, NewJob]] = field(default_factory=list)  # (waiting holder id, request)
    keep: dict[str, Job] = field(default_factory=dict)  # key -> holder, left as it is
    vanished: list[NewJob] = field(default_factory=list)  # key row deleted meanwhile: insert again


def plan_keys(
    requests: Iterable[NewJob], keys: Mapping[str, KeyHold], now: datetime | None
) -> KeyPlan:
    """For each request whose key was taken when it was inserted: take the key over when its
    holder no longer holds it, else replace the holder's fields (when asked and it still waits),
    else keep the holder."""
    plan = KeyPlan()
    for new in requests:
        assert new.unique_key is not None
        key = keys.get(new.unique_key)
        if key is None:
            plan.vanished.append(new)
        elif not key_taken(key, now):
            plan.take_over.append((new, key.job_id))
        else:
            holder = key.holder
            assert holder is not None  # key_taken needs one
            if new.replace and holder.state in (JobState.AVAILABLE, JobState.SCHEDULED):
                plan.replace.append((holder.id, new))
            else:
                plan.keep[key.key] = holder
    return plan


# rescue -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rescued:
    """A job whose node died or lost its lease, the error its history gains, and whether the
    rescue is charged as an attempt (the attempt was counted at claim time; if not charged, the
    rescue gives it back)."""

    job: Job
    error: JobError
    charged: bool


@dataclass(frozen=True)
class RescuePlan:
    release: list[Rescued] = field(default_factory=list)  # back to the queue, rescues + 1
    fail: list[Rescued] = field(default_factory=list)  # charged, out of attempts: archive as failed

    def result(self, next_runs: Sequence[Job] = (), nodes: Sequence[str] = ()) -> RescueResult:
        everyone = [*self.release, *self.fail]
        return RescueResult(
            released=[r.job for r in self.release],
            failed=[r.job for r in self.fail],
            errors={r.job.id: r.error for r in everyone},
            next_runs=list(next_runs),
            nodes=list(nodes),
        )


def plan_rescue(jobs: Iterable[Job], now: datetime, *, died: bool = False) -> RescuePlan:
    """Release each rescued job, or fail it when the rescue is charged and it has no attempts
    left (poison-pill guard). Only a suspect ran alone on its node (suspects are claimed only
    alone), so only its rescue is charged: a healthy job claimed in one batch with a job that
    kills its node is never charged for that job's crashes. ``died``: found through the node's
    liveness lock, else through its lease."""
    release: list[Rescued] = []
    fail: list[Rescued] = []
    for job in jobs:
        charged = is_suspect(job)
        rescued = Rescued(job, rescue_error(job, now, died=died), charged)
        (fail if charged and job.attempt >= job.max_attempts else release).append(rescued)
    return RescuePlan(release=release, fail=fail)


# lifecycle ----------------------------------------------------------------------------------
def check_schema_version(version: int, where: str, display_url: str) -> None:
    """Refuse a database at another schema ``version`` than this bgjobs uses, saying what to run;
    ``where`` names the database for humans."""
    if version < SCHEMA_VERSION:
        raise SchemaError(
            f"the bgjobs schema in {where} is at version {version}, this bgjobs needs "
            f"{SCHEMA_VERSION}. Run `bgjobs migrate --database {display_url}` "
            "(or open the store with migrate=True)."
        )
    if version > SCHEMA_VERSION:
        raise too_new(version, where)


def too_new(version: int, where: str) -> SchemaError:
    return SchemaError(
        f"the bgjobs schema in {where} is at version {version}, newer than this bgjobs "
        f"understands ({SCHEMA_VERSION}). Upgrade bgjobs on this machine."
    )


# operating ----------------------------------------------------------------------------------
def running_job_error(job_id: int, node: str) -> RuntimeStateError:
    """An operator asked to delete a job that a node is running."""
    return RuntimeStateError(
        f"job {job_id} is running on node {node}; cancel it first (`bgjobs jobs cancel "
        f"{job_id}`) or delete it after it finishes."
    )


def lists_hot(state: JobState | None) -> bool:
    """Whether a listing filtered on ``state`` reads the hot table (waiting and running jobs)."""
    return state is None or not state.is_finished


def lists_archive(state: JobState | None) -> bool:
    """Whether a listing filtered on ``state`` reads the archive (finished jobs)."""
    return state is None or state.is_finished


def merge_listings(hot: Sequence[Job], archived: Sequence[Job], limit: int) -> list[Job]:
    """The newest ``limit`` jobs of both tables (each listing is newest first, ``limit`` long)."""
    jobs = [*hot, *archived]
    jobs.sort(key=lambda job: job.id, reverse=True)
    return jobs[:limit]


def prunable(states: Iterable[JobState]) -> list[str]:
    """The stored names of the archive states a prune may delete (finished ones only)."""
    return [state.value for state in states if state.is_finished]


def prunable_history(states: Iterable[JobState]) -> list[str]:
    """The history entries a prune of archive ``states`` also deletes, by the result they are
    kept under: a run's by how it ended; the rest (skipped, coalesced, removed) like successes,
    as "" (they record normal operation, not a failure someone must look at)."""
    wanted = prunable(states)
    return [*wanted, ""] if JobState.SUCCEEDED.value in wanted else wanted


def assemble_stats(
    waiting: Iterable[tuple[str, int, int]],
    running: Iterable[tuple[str, str, int]],
    failed: Iterable[tuple[str, int]],
    recent: Iterable[tuple[str, str, int]],
) -> list[QueueStats]:
    """Per-queue stats from the four stats queries' rows: (queue, available, scheduled),
    (queue, node, running), (queue, failed + discarded) and (queue, state, finished since)."""
    counts: dict[str, dict[str, int]] = {}
    by_node: dict[str, dict[str, int]] = {}

    def queue(name: str) -> dict[str, int]:
        return counts.setdefault(name, dict.fromkeys(_STAT_FIELDS, 0))

    for name, available, scheduled in waiting:
        queue(name).update(available=available, scheduled=scheduled)
    for name, node, count in running:
        queue(name)["running"] += count
        by_node.setdefault(name, {})[node] = count
    for name, count in failed:
        queue(name)["failed"] = count
    for name, state, count in recent:
        if state == JobState.SUCCEEDED.value:
            queue(name)["succeeded_recent"] += count
        elif state in (JobState.FAILED.value, JobState.DISCARDED.value):
            queue(name)["failed_recent"] += count
    return [
        QueueStats(queue=name, **counts[name], running_by_node=by_node.get(name, {}))
        for name in sorted(counts)
    ]


_STAT_FIELDS = ("available", "scheduled", "running", "failed", "succeeded_recent", "failed_recent")
