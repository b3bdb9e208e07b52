"""The decisions every store makes, made once: pure functions over records, no SQL.

A backend's statements only apply what was decided here (River's split: decide above the
driver, apply below it), so there is no policy to keep in step between dialects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    Completion,
    Outcome,
    QueueStats,
    RescueResult,
    ScheduleRegistration,
    is_suspect,
    rescue_error,
)
from bgjobs.errors import RuntimeStateError, SchemaError
from bgjobs.job import Job, JobError, JobState, NewJob

# completing ---------------------------------------------------------------------------------
_FINAL_STATE = {
    Outcome.SUCCEEDED: JobState.SUCCEEDED,
    Outcome.FAILED: JobState.FAILED,
    Outcome.DISCARDED: JobState.DISCARDED,
}


def final_state(outcome: Outcome) -> JobState | None:
    """The archive state an outcome finishes a job in; None when the job goes back to its queue
    (retry: the attempt counts; snoozed: it does not)."""
    return _FINAL_STATE.get(outcome)


def keeps_record(completion: Completion) -> bool:
    """Whether a finished job is archived (always, but for a success with ``keep=False``)."""
    return completion.keep or completion.outcome is not Outcome.SUCCEEDED


# scheduled jobs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleRun:
    """What registering a schedule does: keep a run, or delete one and insert another."""

    keep: Job | None = None  # the pending run stays (None while a run is in progress)
    remove: int | None = None  # the id of a pending run to delete first
    insert: NewJob | None = None  # the run to insert


def schedule_run(
    registration: ScheduleRegistration, pending: Job | None, stored_definition: str | None
) -> ScheduleRun:
    """Decide a schedule's one pending run from the row holding its unique key (``pending``) and
    the definition stored by the last registration (None the first time)."""
    first = registration.first_run
    if pending is None:
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
    )
    if overdue and registration.overdue_run is not None:
        return ScheduleRun(remove=pending.id, insert=registration.overdue_run)
    return ScheduleRun(keep=pending)


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
def running_job_error(
    job_id: int, node: str, action: Literal["cancel", "delete"]
) -> RuntimeStateError:
    """An operator asked to cancel or delete a job that a node is running."""
    if action == "cancel":
        advice = "it can be cancelled only while waiting. Wait for it to finish, or stop that node."
    else:
        advice = "delete it after it finishes."
    return RuntimeStateError(f"job {job_id} is running on node {node}; {advice}")


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


def assemble_stats(
    waiting: Iterable[tuple[str, int, int]],
    running: Iterable[tuple[str, int]],
    failed: Iterable[tuple[str, int]],
    recent: Iterable[tuple[str, str, int]],
) -> list[QueueStats]:
    """Per-queue stats from the four stats queries' rows: (queue, available, scheduled),
    (queue, running), (queue, failed + discarded) and (queue, state, finished since)."""
    counts: dict[str, dict[str, int]] = {}

    def queue(name: str) -> dict[str, int]:
        return counts.setdefault(name, dict.fromkeys(_STAT_FIELDS, 0))

    for name, available, scheduled in waiting:
        queue(name).update(available=available, scheduled=scheduled)
    for name, count in running:
        queue(name)["running"] = count
    for name, count in failed:
        queue(name)["failed"] = count
    for name, state, count in recent:
        if state == JobState.SUCCEEDED.value:
            queue(name)["succeeded_recent"] += count
        elif state in (JobState.FAILED.value, JobState.DISCARDED.value):
            queue(name)["failed_recent"] += count
    return [QueueStats(queue=name, **counts[name]) for name in sorted(counts)]


_STAT_FIELDS = ("available", "scheduled", "running", "failed", "succeeded_recent", "failed_recent")
