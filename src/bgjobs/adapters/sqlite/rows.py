"""SQLite's side of the row conversions: times are integer microseconds since the epoch (UTC),
and text another tool stored as invalid UTF-8 still reads."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bgjobs.adapters.rows import Row, archived_job, hot_job, microseconds
from bgjobs.job import Job
from bgjobs.payload import UndecodableText

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


def read_text(raw: bytes) -> str:
    """The connections' text decoder: text that is not valid UTF-8 reads as ``UndecodableText``
    (U+FFFD in place of each bad byte) instead of failing the statement that read it, so one
    bad row cannot fail every claim or listing of its table. (Python code, so the claim and
    complete use SQLite's own decoder first: see ``SQLiteStore._strict_text``.)"""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return UndecodableText(raw)


def is_undecodable_error(exc: Exception) -> bool:
    """Whether SQLite's own strict decoder refused a value."""
    return "Could not decode to UTF-8" in str(exc)
