"""When a scheduled job's next run is due, and what became of every due time: the maths behind
registration, the run that follows a finished one, and the history each writes (pure functions).

Every due time of a schedule ends with exactly one history record. Around a run due at D that
was claimed at S and ended at F, the due times in (D, S] came while it waited to start (late:
the missed-run policy coalesces them into it or skips them), and those in (S, F] came while it
ran (overlap: skipped, or queued as one run that starts at once). Spans of many due times are
one record each, so a week of downtime is a line, not a million.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bgjobs.adapters.base import (
    FollowUp,
    Occurrence,
    ScheduleRecord,
    ScheduleRegistration,
    is_regular_run,
    run_now_key,
    schedule_key,
)
from bgjobs.builder import MissedRuns, Overlap, ScheduledJobSpec
from bgjobs.job import Job, NewJob
from bgjobs.schedules import Interval, Schedule

# Catching up by stepping occurrence by occurrence is bounded; past it we run "now".
_MAX_CATCH_UP_STEPS = 100_000
# Due times counted one by one in a span; past this a span's count is left unknown (None).
_MAX_COUNTED = 10_000
_ONE_US = timedelta(microseconds=1)


_LOOKBACKS = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=32),
    timedelta(days=367),
    timedelta(days=366 * 8),
)


def latest_occurrence(schedule: Schedule, now: datetime) -> datetime:
    """The last fire time not after ``now`` (``now`` itself if none in the last 8 years).

    Widening windows keep the number of steps small for any period: the first window that
    contains an occurrence holds only a few of them."""
    for window in _LOOKBACKS:
        first = schedule.next_after(now - window)
        if first <= now:
            return latest_at_or_before(schedule, first, now)
    return now


def latest_at_or_before(schedule: Schedule, start: datetime, now: datetime) -> datetime:
    """The last occurrence after ``start`` that is not after ``now`` (``start`` if none)."""
    current = start
    for _ in range(_MAX_CATCH_UP_STEPS):
        following = schedule.next_after(current)
        if following > now:
            return current
        current = following
    return now


@dataclass(frozen=True)
class Span:
    """The due times of a schedule in an interval: the first, the last, and how many (None:
    more than bgjobs counts one by one)."""

    first: datetime
    last: datetime
    count: int | None

    def record(self, schedule: str, outcome: Occurrence, **fields: object) -> ScheduleRecord:
        return ScheduleRecord(
            schedule=schedule,
            outcome=outcome,
            due_at=self.first,
            last_due_at=None if self.count == 1 else self.last,
            occurrences=self.count,
            **fields,  # type: ignore[arg-type]
        )


def span(schedule: Schedule, after: datetime, until: datetime) -> Span | None:
    """The due times in (``after``, ``until``]; None when there are none."""
    first = schedule.next_after(after)
    if first > until:
        return None
    if isinstance(schedule, Interval):  # a fixed grid: count by arithmetic
        count = (until - first) // schedule.period + 1
        return Span(first, first + schedule.period * (count - 1), count)
    current, count = first, 1
    for _ in range(_MAX_COUNTED):
        following = schedule.next_after(current)
        if following > until:
            return Span(first, current, count)
        current, count = following, count + 1
    return Span(first, latest_occurrence(schedule, until), None)


def run_at(spec: ScheduledJobSpec, queue: str, due: datetime) -> NewJob:
    return NewJob(
        queue=queue,
        name=spec.name,
        raw_payload="null",
        max_attempts=spec.max_attempts,
        available_at=due,
        unique_key=schedule_key(spec.name),
        schedule=spec.name,
    )


def run_now(name: str, queue: str, max_attempts: int) -> NewJob:
    """An extra run of a schedule, due now, beside its grid: it holds its own key, never the
    pending run's, so the regular run keeps its time."""
    return NewJob(
        queue=queue,
        name=name,
        raw_payload="null",
        max_attempts=max_attempts,
        unique_key=run_now_key(name),
        schedule=name,
    )


# registration -------------------------------------------------------------------------------
def registration(spec: ScheduledJobSpec, queue: str, now: datetime) -> ScheduleRegistration:
    upcoming = spec.schedule.next_after(now)
    # Skip waits for the next occurrence; coalesce runs everything missed as one run right away,
    # due at the latest missed occurrence so the run stays on the schedule's grid.
    coalesce = spec.missed is MissedRuns.COALESCE
    overdue = latest_occurrence(spec.schedule, now) if coalesce else upcoming

    def missed_records(replaced_due: datetime) -> tuple[ScheduleRecord, ...]:
        # The replaced run's due time and those after it: folded into the catch-up run (all
        # but its own due time), or dropped.
        until = overdue - _ONE_US if coalesce else now
        missed = span(spec.schedule, replaced_due - _ONE_US, until)
        if missed is None:
            return ()
        if coalesce:
            return (missed.record(spec.name, Occurrence.COALESCED, into_next=True),)
        return (missed.record(spec.name, Occurrence.SKIPPED_MISSED),)

    def removed_records(after: datetime) -> tuple[ScheduleRecord, ...]:
        # While no node defined the schedule, its due times passed unrun.
        passed = span(spec.schedule, after, now)
        return () if passed is None else (passed.record(spec.name, Occurrence.REMOVED),)

    return ScheduleRegistration(
        name=spec.name,
        definition=spec.schedule.describe(),
        first_run=run_at(spec, queue, upcoming),
        overdue_before=now,
        overdue_run=run_at(spec, queue, overdue),
        missed_records=missed_records,
        removed_records=removed_records,
        max_attempts=spec.max_attempts,
    )


def without_overdue(registration: ScheduleRegistration) -> ScheduleRegistration:
    return replace(registration, overdue_before=None, overdue_run=None, missed_records=None)


# after a run --------------------------------------------------------------------------------
NO_FOLLOW_UP = FollowUp()  # most jobs: shared, so the completion of a plain job allocates nothing


def after_run(spec: ScheduledJobSpec, queue: str, job: Job, now: datetime) -> FollowUp:
    """The follow-up of a run of ``spec`` that ended at ``now``. The next run is computed from
    the run's due time, never from when it ended, so runs do not drift."""
    if not is_regular_run(job):
        return NO_FOLLOW_UP  # a run-now run leaves the grid alone
    due = job.scheduled_at
    started = max(job.reserved_at or due, due)
    ended = max(now, started)
    records: list[ScheduleRecord] = []
    late = span(spec.schedule, due, started)
    if late is not None:
        if spec.missed is MissedRuns.COALESCE:
            records.append(late.record(spec.name, Occurrence.COALESCED, job_id=job.id))
        else:
            records.append(late.record(spec.name, Occurrence.SKIPPED_MISSED))
    overlapped = span(spec.schedule, started, ended)
    if overlapped is None:
        next_due = spec.schedule.next_after(ended)
    elif spec.overlap_policy is Overlap.SKIP:
        records.append(overlapped.record(spec.name, Occurrence.SKIPPED_OVERLAP, job_id=job.id))
        next_due = spec.schedule.next_after(ended)
    else:
        # Queue: one run, due at the latest due time that passed, starts at once; it stands
        # for the earlier ones.
        next_due = overlapped.last
        if overlapped.count != 1:
            folded = Span(
                overlapped.first,
                latest_occurrence(spec.schedule, next_due - _ONE_US),
                None if overlapped.count is None else overlapped.count - 1,
            )
            records.append(folded.record(spec.name, Occurrence.COALESCED, into_next=True))
    return FollowUp(run_at(spec, queue, next_due), tuple(records))


def after_skip(
    spec: ScheduledJobSpec, queue: str, job: Job, now: datetime, outcome: Occurrence
) -> FollowUp:
    """The follow-up of a run skipped before its handler (``outcome``: paused, or its previous
    run still going): the due times that passed since are skipped alike, and the schedule waits
    for its next one."""
    if not is_regular_run(job):
        return NO_FOLLOW_UP
    passed = span(spec.schedule, job.scheduled_at, now)
    records = () if passed is None else (passed.record(spec.name, outcome),)
    return FollowUp(run_at(spec, queue, spec.schedule.next_after(now)), records)
