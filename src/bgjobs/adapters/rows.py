"""Rows to records, once for every backend.

Both dialects select the same column lists (below), so a ``Job``, ``NodeInfo`` or
``ScheduleState`` is built from a row here and nowhere else. They differ only in how a stored
time reads back (integer microseconds on SQLite, ``timestamptz`` on Postgres), so each passes its
own ``to_time``. Rows are read by column name: job rows (the claim's hot path) through ``picker``,
which turns names into positions once, at import, and reads them with one C call, as fast as
literal indexes; node and schedule rows through a dict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from bgjobs.adapters.base import (
    NodeInfo,
    Occurrence,
    ProgressUpdate,
    ScheduleRecord,
    ScheduleState,
    hot_state,
)
from bgjobs.job import Job, JobError, JobState, NewJob, Progress, UniqueHold

Row = Sequence[Any]
ToTime = Callable[[Any], datetime]


def select_list(columns: Sequence[str], alias: str | None = None) -> str:
    """``a, b, c`` (or ``t.a, t.b, t.c``) for SQL text."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + column for column in columns)


# The hot table (waiting and running jobs), in the order every backend selects it.
HOT_COLUMNS = (
    "id",
    "queue",
    "name",
    "payload",
    "priority",
    "attempt",
    "max_attempts",
    "available_at",
    "created_at",
    "scheduled_at",
    "reserved_by",
    "reserved_at",
    "lease_expires_at",
    "unique_key",
    "schedule",
    "errors",
    "meta",
    "progress",
    "progress_message",
    "cancel_requested_at",
    "rescues",
)
# What a job keeps as it moves to the archive: all but its lease and a pending cancel request
# (its errors get the final one).
CARRIED_COLUMNS = tuple(
    c for c in HOT_COLUMNS if c not in ("lease_expires_at", "errors", "cancel_requested_at")
)
# The archive (finished jobs).
ARCHIVE_COLUMNS = (*CARRIED_COLUMNS, "errors", "state", "finished_at")
NODE_COLUMNS = ("id", "host", "pid", "started_at", "heartbeat_at", "queues", "offers", "lock_key")
# A unique key: the job holding it, and its hold (UniqueHold, stored as written by hold_values).
KEY_COLUMNS = ("key", "job_id", "while_running", "keep_states", "period_us")
# A schedule's history (one entry per due time, or per span of them).
HISTORY_COLUMNS = (
    "id",
    "schedule",
    "outcome",
    "due_at",
    "last_due_at",
    "occurrences",
    "job_id",
    "node",
    "started_at",
    "result",
    "manual",
    "recorded_at",
)
# What a history insert writes (the store stamps recorded_at).
HISTORY_WRITTEN = tuple(c for c in HISTORY_COLUMNS if c not in ("id", "recorded_at"))
# A schedule joined with its pending run (j; NULL when there is none) and its newest history
# entry (h, read as h_<column>).
_SCHEDULE_OWN = (
    "name",
    "definition",
    "queue",
    "last_due_at",
    "last_finished_at",
    "last_outcome",
    "last_started_at",
    "paused_at",
    "paused_until",
    "removed_at",
    "max_attempts",
)
SCHEDULE_STATE_COLUMNS = (
    *_SCHEDULE_OWN,
    "available_at",
    "reserved_by",
    *(f"h_{column}" for column in HISTORY_COLUMNS),
)
# The same lists as SQL text, for both dialects' queries.
HOT_SELECT = select_list(HOT_COLUMNS)
ARCHIVE_SELECT = select_list(ARCHIVE_COLUMNS)
CARRIED_SELECT = select_list(CARRIED_COLUMNS)
NODE_SELECT = select_list(NODE_COLUMNS)
HISTORY_SELECT = select_list(HISTORY_COLUMNS)
KEY_SELECT = select_list(KEY_COLUMNS)
# SCHEDULE_STATE_COLUMNS from a schedule (alias s), its pending run (j) and newest entry (h).
SCHEDULE_STATE_SELECT = ", ".join(
    [
        select_list(_SCHEDULE_OWN, "s"),
        "j.available_at, j.reserved_by",
        *(f"h.{column} AS h_{column}" for column in HISTORY_COLUMNS),
    ]
)


def picker(columns: Sequence[str], *names: str) -> Callable[[Row], Any]:
    """Reads ``names`` (a tuple of them, or the one value) from a row selected as ``columns``."""
    return itemgetter(*(columns.index(name) for name in names))


def scalar(row: Row | None) -> Any:
    """The one value of a one-column row (None when there is no row)."""
    if row is None:
        return None
    (value,) = row
    return value


def microseconds(delta: timedelta) -> int:
    """A duration in whole microseconds (exact, unlike total_seconds())."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def progress_rows(updates: Sequence[ProgressUpdate]) -> str:
    """Progress updates as one JSON array for the dialects' SET_PROGRESS."""
    return json.dumps(
        [
            {
                "id": u.job_id,
                "node": u.node_id,
                "attempt": u.attempt,
                "fraction": u.progress.fraction,
                "message": u.progress.message,
            }
            for u in updates
        ],
        ensure_ascii=False,
    )


def parse_errors(text: str | None) -> tuple[JobError, ...]:
    """A stored error history (JSON array text). Most jobs have none: skip the parse."""
    if not text or text == "[]":
        return ()
    try:
        return tuple(JobError.from_dict(item) for item in json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        # A damaged history must not make the job unreadable.
        return ()


# The columns both tables hold, read from either by name into one Job builder.
_JOB_COLUMNS = (*CARRIED_COLUMNS, "errors")
_hot_common = picker(HOT_COLUMNS, *_JOB_COLUMNS)
_hot_only = picker(HOT_COLUMNS, "lease_expires_at", "cancel_requested_at")
_archive_common = picker(ARCHIVE_COLUMNS, *_JOB_COLUMNS)
_archive_end = picker(ARCHIVE_COLUMNS, "state", "finished_at")


def hot_job(row: Row, to_time: ToTime, now: datetime) -> Job:
    """A hot-table row (HOT_COLUMNS first; a backend may append columns of its own). Its state
    is derived against ``now``: running when reserved, else scheduled until due."""
    lease, cancel = _hot_only(row)
    return _job(
        _hot_common(row),
        to_time,
        now=now,
        lease_expires_at=None if lease is None else to_time(lease),
        cancel_requested_at=None if cancel is None else to_time(cancel),
    )


def archived_job(row: Row, to_time: ToTime) -> Job:
    """An archive row (ARCHIVE_COLUMNS)."""
    state, finished_at = _archive_end(row)
    return _job(
        _archive_common(row), to_time, state=JobState(state), finished_at=to_time(finished_at)
    )


def _job(
    values: tuple[Any, ...],
    to_time: ToTime,
    *,
    now: datetime | None = None,
    state: JobState | None = None,
    lease_expires_at: datetime | None = None,
    cancel_requested_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> Job:
    """The one place a stored job becomes a ``Job``: ``values`` in _JOB_COLUMNS order, plus what
    only one table knows (the hot table's lease and derived state, the archive's end)."""
    (
        job_id,
        queue,
        name,
        payload,
        priority,
        attempt,
        max_attempts,
        available_at,
        created_at,
        scheduled_at,
        reserved_by,
        reserved_at,
        unique_key,
        schedule,
        meta,
        progress,
        progress_message,
        rescues,
        errors,
    ) = values
    available = to_time(available_at)
    if state is None:
        assert now is not None, "a hot row's state is derived against now"
        state = hot_state(reserved_by, available, now)
    return Job(
        id=job_id,
        queue=queue,
        name=name,
        raw_payload=payload,
        state=state,
        priority=priority,
        attempt=attempt,
        max_attempts=max_attempts,
        available_at=available,
        created_at=to_time(created_at),
        scheduled_at=to_time(scheduled_at),
        reserved_by=reserved_by,
        reserved_at=None if reserved_at is None else to_time(reserved_at),
        lease_expires_at=lease_expires_at,
        finished_at=finished_at,
        unique_key=unique_key,
        schedule=schedule,
        errors=parse_errors(errors),
        raw_meta=meta,
        progress=None if progress is None else Progress(progress, progress_message or ""),
        cancel_requested_at=cancel_requested_at,
        rescues=rescues,
    )


def inserted_job(
    new: NewJob, job_id: int, created_at: datetime, available_at: datetime, now: datetime
) -> Job:
    """A job just inserted: what the caller sent plus what the database decided (already
    converted), so an insert need not read the whole row back."""
    return Job(
        id=job_id,
        queue=new.queue,
        name=new.name,
        raw_payload=new.raw_payload,
        state=hot_state(None, available_at, now),
        priority=new.priority,
        attempt=0,
        max_attempts=new.max_attempts,
        available_at=available_at,
        created_at=created_at,
        scheduled_at=available_at,
        unique_key=new.unique_key,
        schedule=new.schedule,
        raw_meta=new.raw_meta,
    )


def node_info(
    row: Row,
    to_time: ToTime,
    to_queues: Callable[[Any], Sequence[str]],
    to_offers: Callable[[Any], Any],
) -> NodeInfo:
    """A node row (NODE_COLUMNS); ``to_queues`` reads the stored list of queue names,
    ``to_offers`` the stored offers document (see ``offers_json``)."""
    node = dict(zip(NODE_COLUMNS, row, strict=True))
    workers, schedules = _offers(to_offers(node["offers"]))
    return NodeInfo(
        id=node["id"],
        host=node["host"],
        pid=node["pid"],
        started_at=to_time(node["started_at"]),
        heartbeat_at=to_time(node["heartbeat_at"]),
        queues=tuple(to_queues(node["queues"])),
        workers=workers,
        schedules=schedules,
        lock_key=node["lock_key"],
    )


def offers_json(node: NodeInfo) -> str:
    """What a node publishes it runs, as stored in the registry's ``offers`` column."""
    return json.dumps(
        {
            "workers": {queue: list(names) for queue, names in node.workers.items()},
            "schedules": dict(node.schedules),
        },
        sort_keys=True,
    )


def _offers(document: Any) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """The offers document read back; anything malformed reads as "publishes nothing" (a row
    written before the column existed holds ``{}``)."""
    if not isinstance(document, dict):
        return {}, {}
    workers = document.get("workers")
    schedules = document.get("schedules")
    return (
        {
            str(queue): tuple(str(name) for name in names)
            for queue, names in (workers.items() if isinstance(workers, dict) else ())
            if isinstance(names, list)
        },
        {
            str(name): str(definition)
            for name, definition in (schedules.items() if isinstance(schedules, dict) else ())
        },
    )


def schedule_state(row: Row, to_time: ToTime) -> ScheduleState:
    """A schedule joined with its pending run and newest history entry (SCHEDULE_STATE_COLUMNS)."""
    state = dict(zip(SCHEDULE_STATE_COLUMNS, row, strict=True))
    time = _maybe(state, to_time)
    newest = {column: state[f"h_{column}"] for column in HISTORY_COLUMNS}
    return ScheduleState(
        name=state["name"],
        definition=state["definition"],
        queue=state["queue"],
        next_run_at=time("available_at"),
        running=state["reserved_by"] is not None,
        last_due_at=time("last_due_at"),
        last_finished_at=time("last_finished_at"),
        last_outcome=state["last_outcome"],
        last_started_at=time("last_started_at"),
        paused_at=time("paused_at"),
        paused_until=time("paused_until"),
        removed_at=time("removed_at"),
        max_attempts=state["max_attempts"],
        last_record=None if newest["id"] is None else _record(newest, to_time),
    )


def schedule_record(row: Row, to_time: ToTime) -> ScheduleRecord:
    """A history row (HISTORY_COLUMNS)."""
    return _record(dict(zip(HISTORY_COLUMNS, row, strict=True)), to_time)


def _record(values: dict[str, Any], to_time: ToTime) -> ScheduleRecord:
    time = _maybe(values, to_time)
    due_at = time("due_at")
    assert due_at is not None, "every history entry has a due time"
    return ScheduleRecord(
        id=values["id"],
        schedule=values["schedule"],
        outcome=Occurrence(values["outcome"]),
        due_at=due_at,
        last_due_at=time("last_due_at"),
        occurrences=values["occurrences"],
        job_id=values["job_id"],
        node=values["node"],
        started_at=time("started_at"),
        result=values["result"],
        manual=bool(values["manual"]),
        recorded_at=time("recorded_at"),
    )


def history_values(record: ScheduleRecord, to_value: Callable[[datetime], Any]) -> dict[str, Any]:
    """A record to write, as HISTORY_WRITTEN column -> value (times through ``to_value``)."""

    def value(moment: datetime | None) -> Any:
        return None if moment is None else to_value(moment)

    return {
        "schedule": record.schedule,
        "outcome": record.outcome.value,
        "due_at": value(record.due_at),
        "last_due_at": value(record.last_due_at),
        "occurrences": record.occurrences,
        "job_id": record.job_id,
        "node": record.node,
        "started_at": value(record.started_at),
        "result": record.result,
        "manual": record.manual,
    }


def _maybe(values: dict[str, Any], to_time: ToTime) -> Callable[[str], datetime | None]:
    def time(column: str) -> datetime | None:
        value = values[column]
        return None if value is None else to_time(value)

    return time


def hold_values(hold: UniqueHold) -> tuple[bool, str, int | None]:
    """A hold as stored: while_running, keep_states (a JSON array of state names), period_us."""
    states = json.dumps(sorted(state.value for state in hold.after))
    period = None if hold.period is None else microseconds(hold.period)
    return hold.while_running, states, period


def key_row(row: Row) -> tuple[str, int, UniqueHold]:
    """A key row (KEY_COLUMNS): the key, the id of the job holding it, and its hold."""
    key = dict(zip(KEY_COLUMNS, row, strict=True))
    period = key["period_us"]
    hold = UniqueHold(
        while_running=bool(key["while_running"]),
        after=frozenset(JobState(state) for state in json.loads(key["keep_states"])),
        period=None if period is None else timedelta(microseconds=period),
    )
    return key["key"], key["job_id"], hold
