"""Postgres's side of the row conversions: ``timestamptz`` values, and the columns its statements
append to the shared column lists (see ``queries``)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from bgjobs.adapters.rows import HOT_COLUMNS, Row, archived_job, hot_job, picker
from bgjobs.job import Job

# Hot rows come back as HOT_COLUMNS, now() (and, from some statements, a pg_notify result).
HOT_ROW_COLUMNS = (*HOT_COLUMNS, "now")
# What INSERT_NOW and INSERT_ONE return: only what the database decided.
INSERTED_COLUMNS = ("id", "created_at", "available_at", "now", "notified")

# A JSON \u0000 escape: an odd number of backslashes before u0000 (an even number is a literal).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_hot_times = picker(HOT_ROW_COLUMNS, "available_at", "now")


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


def hot(row: Row) -> Job:
    """A hot row (HOT_ROW_COLUMNS). Sessions bgjobs opens are in UTC, so values arrive in
    ``datetime.UTC`` already; only rows from a caller's pool in another zone convert."""
    available_at, now = _hot_times(row)
    if available_at.tzinfo is UTC:
        return hot_job(row, _same, now)
    return hot_job(row, utc, utc(now))


def _same(moment: datetime) -> datetime:
    return moment


def archived(row: Row) -> Job:
    return archived_job(row, utc)
