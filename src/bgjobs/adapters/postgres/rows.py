"""Conversions between Postgres rows (see queries.HOT / queries.ARCHIVE) and bgjobs records."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bgjobs.adapters.base import NodeInfo, hot_state
from bgjobs.adapters.records import archived_job as archived_record
from bgjobs.adapters.records import hot_job as hot_record
from bgjobs.job import Job, JobError, NewJob

Row = Sequence[Any]
# A JSON \u0000 escape: an odd number of backslashes before u0000 (an even number is a literal).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def utc(moment: datetime) -> datetime:
    """psycopg returns timestamptz in the session's time zone; bgjobs hands out UTC."""
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def batch_json(rows: list[dict[str, Any]]) -> str:
    """A batch as one JSON document for ``json_to_recordset``. Text columns cannot hold NUL, so
    an escaped NUL (only ever seen in error messages) is kept as visible text instead."""
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return _NUL_ESCAPE.sub(r"\1\\\\u0000", text) if "\\u0000" in text else text


def error_dict(error: JobError | None) -> dict[str, Any] | None:
    return None if error is None else error.to_dict()


_HOT_TIMES = (7, 8, 9, 11, 12, 16)  # the timestamptz columns of a ``HOT, now()`` row


def _in_utc(row: Row, columns: Sequence[int]) -> list[Any]:
    converted = list(row)
    for index in columns:
        if converted[index] is not None:
            converted[index] = utc(converted[index])
    return converted


def hot_job(row: Row) -> Job:
    """A hot-table row selected as ``HOT, now()``. Sessions bgjobs opens are in UTC, so values
    arrive in ``datetime.UTC`` already; only rows from a caller's pool in another zone convert."""
    if row[7].tzinfo is not UTC:
        row = _in_utc(row, _HOT_TIMES)
    return hot_record(row, _same, row[16])


def _same(moment: datetime) -> datetime:
    return moment


def inserted_job(new: NewJob, row: Row) -> Job:
    """A job from the insert's ``id, created_at, available_at, now()`` and what was sent."""
    available_at = utc(row[2])
    return Job(
        id=row[0],
        queue=new.queue,
        name=new.name,
        raw_payload=new.raw_payload,
        state=hot_state(None, available_at, row[3]),
        priority=new.priority,
        attempt=0,
        max_attempts=new.max_attempts,
        available_at=available_at,
        created_at=utc(row[1]),
        scheduled_at=available_at,
        unique_key=new.unique_key,
        schedule=new.schedule,
    )


def node_info(row: Row) -> NodeInfo:
    return NodeInfo(
        id=row[0],
        host=row[1],
        pid=row[2],
        started_at=utc(row[3]),
        heartbeat_at=utc(row[4]),
        queues=tuple(row[5]),
    )


def archived_job(row: Row) -> Job:
    return archived_record(row, utc)
