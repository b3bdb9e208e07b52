"""SQLite's side of the row conversions: times are integer microseconds since the epoch (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bgjobs.adapters.rows import Row, archived_job, hot_job, microseconds
from bgjobs.job import Job

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; exact for any aware datetime."""
    return microseconds(moment - EPOCH)


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def hot(row: Row, now: datetime) -> Job:
    return hot_job(row, from_us, now)


def archived(row: Row) -> Job:
    return archived_job(row, from_us)
