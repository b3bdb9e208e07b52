"""Steering schedules from any process: pause, resume, run now, and reading their history.

The CLI has no app, so everything here works through the database alone: ``bgjobs schedules
pause NAME`` in a shell and ``bg.pause_schedule(NAME)`` in a node do the same thing, and every
node sees it, since the state lives in the schedules table (a pause survives restarts and
deploys). Each function refuses what it cannot do with an error naming the fix.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn

from bgjobs.adapters.base import ScheduleRecord, ScheduleState, Store
from bgjobs.errors import ConfigError, RuntimeStateError, UnknownScheduleError
from bgjobs.job import Job
from bgjobs.runtime import scheduling


def pause_until(until: datetime | timedelta | None, now: datetime) -> datetime | None:
    """When a pause given as a time or a duration ends (None: until resumed)."""
    if until is None:
        return None
    if isinstance(until, timedelta):
        if until <= timedelta(0):
            raise ConfigError(f"pause for {until}: give a positive duration, e.g. 2h")
        return now + until
    if not isinstance(until, datetime) or until.utcoffset() is None:
        raise ConfigError(
            f"pause until {until!r}: give a timezone-aware datetime (tzinfo=timezone.utc) "
            "or a timedelta"
        )
    if until <= now:
        raise ConfigError(f"pause until {until.isoformat()}: that is not in the future")
    return until


def pause(store: Store, name: str, until: datetime | None) -> ScheduleState:
    """Pause ``name`` until ``until`` (or until resumed): occurrences that come due meanwhile are
    recorded as skipped while paused, and the grid goes on."""
    state = store.pause_schedule(name, until)
    return state if state is not None else _unknown(store, name)


def resume(store: Store, name: str) -> ScheduleState:
    """Resume ``name``: the next occurrence on its grid runs."""
    state = store.resume_schedule(name)
    return state if state is not None else _unknown(store, name)


def run_now(store: Store, name: str) -> Job | None:
    """Insert a run of ``name`` due now, beside its grid (the regular run keeps its time). None
    when a run-now run of it is already waiting or running."""
    state = store.schedule_state(name)
    if state is None:
        _unknown(store, name)
    if state.removed_at is not None:
        raise RuntimeStateError(
            f"schedule {name!r} was removed at {state.removed_at.isoformat()}: no live node "
            "defines it any more, so nothing would run it. Deploy a node that defines it."
        )
    # The run-now key goes through the keys table like any unique key: a run-now run that still
    # waits or runs holds it, and comes back as a duplicate.
    (job,) = store.insert_jobs([scheduling.run_now(name, state.queue, state.max_attempts)])
    return None if job.duplicate else job


def history(store: Store, name: str, limit: int) -> list[ScheduleRecord]:
    """The newest ``limit`` entries of ``name``'s history, newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"history limit must be a whole number >= 1, got {limit!r}")
    records = store.schedule_history(name, limit)
    if not records and store.schedule_state(name) is None:
        _unknown(store, name)
    return records


def _unknown(store: Store, name: str) -> NoReturn:
    known = ", ".join(state.name for state in store.schedule_states()) or "none"
    raise UnknownScheduleError(
        f"no schedule named {name!r} in {store.display_url} (known: {known}). A schedule is "
        "known once a node that defines it has started (`bgjobs run`)."
    )
