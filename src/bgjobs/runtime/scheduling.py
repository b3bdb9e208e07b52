"""When a scheduled job's next run is due, and the registration that keeps one pending run."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bgjobs.adapters.base import ScheduleRegistration, schedule_key
from bgjobs.builder import MissedRuns, ScheduledJobSpec
from bgjobs.job import NewJob
from bgjobs.schedules import Schedule

# Catching up by stepping occurrence by occurrence is bounded; past it we run "now".
_MAX_CATCH_UP_STEPS = 100_000


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


def next_due(spec: ScheduledJobSpec, previous_due: datetime, now: datetime) -> datetime:
    """The next run after the one due at ``previous_due``, computed from the previous due time
    (not from when it finished) so runs never drift. Occurrences that passed while the run was
    going are collapsed into one immediate run (coalesce) or dropped (skip)."""
    following = spec.schedule.next_after(previous_due)
    if following > now:
        return following
    if spec.missed is MissedRuns.SKIP:
        return spec.schedule.next_after(now)
    return latest_at_or_before(spec.schedule, following, now)


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


def registration(spec: ScheduledJobSpec, queue: str, now: datetime) -> ScheduleRegistration:
    upcoming = spec.schedule.next_after(now)
    # Skip waits for the next occurrence; coalesce runs everything missed as one run right away,
    # due at the latest missed occurrence so the run stays on the schedule's grid.
    overdue = upcoming if spec.missed is MissedRuns.SKIP else latest_occurrence(spec.schedule, now)
    return ScheduleRegistration(
        name=spec.name,
        definition=spec.schedule.describe(),
        first_run=run_at(spec, queue, upcoming),
        overdue_before=now,
        overdue_run=run_at(spec, queue, overdue),
    )


def without_overdue(registration: ScheduleRegistration) -> ScheduleRegistration:
    return replace(registration, overdue_before=None, overdue_run=None)
