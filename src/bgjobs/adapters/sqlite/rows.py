"""Conversions between SQLite rows and bgjobs records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bgjobs.adapters.records import archived_job as archived_record
from bgjobs.adapters.records import hot_job as hot_record
from bgjobs.job import Job, JobError, JobState

HOT_COLUMNS = (
    "id, queue, name, payload, priority, attempt, max_attempts, available_at, created_at, "
    "scheduled_at, reserved_by, reserved_at, lease_expires_at, unique_key, schedule, errors"
)
ARCHIVE_COLUMNS = (
    "id, queue, name, payload, priority, attempt, max_attempts, available_at, created_at, "
    "scheduled_at, reserved_by, reserved_at, unique_key, schedule, errors, state, finished_at"
)

Row = Sequence[Any]


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; exact for any aware datetime."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def maybe_from_us(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def errors_with(text: str, error: JobError | None) -> str:
    items = json.loads(text or "[]")
    if error is not None:
        items.append(error.to_dict())
    return json.dumps(items)


def hot_job(row: Row, now_us: int) -> Job:
    return hot_record(row, from_us, from_us(now_us))


def archived_job(row: Row) -> Job:
    return archived_record(row, from_us)


def archive_values(row: Row, state: JobState, finished_us: int, errors: str) -> tuple[Any, ...]:
    """Archive-table values for a hot row (as selected with HOT_COLUMNS)."""
    return (*row[:12], row[13], row[14], errors, state.value, finished_us)
