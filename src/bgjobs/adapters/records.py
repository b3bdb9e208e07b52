"""Row-to-record helpers shared by the backends (their SQL differs; their rows do not)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bgjobs.adapters.base import hot_state
from bgjobs.job import Job, JobError, JobState

Row = Sequence[Any]


def microseconds(delta: timedelta) -> int:
    """A duration in whole microseconds (exact, unlike total_seconds())."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_errors(text: str | None) -> tuple[JobError, ...]:
    """A stored error history (JSON array text). Most jobs have none: skip the parse."""
    if not text or text == "[]":
        return ()
    try:
        return tuple(JobError.from_dict(item) for item in json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError):
        # A damaged history must not make the job unreadable.
        return ()


def hot_job(row: Row, to_time: Callable[[Any], datetime], now: datetime) -> Job:
    """A hot-table row in HOT column order; its state is derived against ``now``."""
    available_at = to_time(row[7])
    return Job(
        id=row[0],
        queue=row[1],
        name=row[2],
        raw_payload=row[3],
        state=hot_state(row[10], available_at, now),
        priority=row[4],
        attempt=row[5],
        max_attempts=row[6],
        available_at=available_at,
        created_at=to_time(row[8]),
        scheduled_at=to_time(row[9]),
        reserved_by=row[10],
        reserved_at=None if row[11] is None else to_time(row[11]),
        lease_expires_at=None if row[12] is None else to_time(row[12]),
        unique_key=row[13],
        schedule=row[14],
        errors=parse_errors(row[15]),
    )


def archived_job(row: Row, to_time: Callable[[Any], datetime]) -> Job:
    """An archive row in ARCHIVE column order (both backends select the same columns)."""
    return Job(
        id=row[0],
        queue=row[1],
        name=row[2],
        raw_payload=row[3],
        priority=row[4],
        attempt=row[5],
        max_attempts=row[6],
        available_at=to_time(row[7]),
        created_at=to_time(row[8]),
        scheduled_at=to_time(row[9]),
        reserved_by=row[10],
        reserved_at=None if row[11] is None else to_time(row[11]),
        unique_key=row[12],
        schedule=row[13],
        errors=parse_errors(row[14]),
        state=JobState(row[15]),
        finished_at=to_time(row[16]),
    )
