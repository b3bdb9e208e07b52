"""Migration 2 (rescue counts, liveness lock keys, the suspects index) on a version-1 database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import PG_URL
from tests.reliability.raw import execute

from bgjobs.adapters.base import SCHEMA_VERSION, ClaimRequest, Store
from bgjobs.adapters.postgres import schema as pg_schema
from bgjobs.adapters.sqlite import schema as sqlite_schema
from bgjobs.errors import SchemaError


def at_version_1(backend: str, tmp_path: Path, schema: str | None) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        conn.execute("BEGIN")
        sqlite_schema.migrate(conn.cursor(), 1, 0)
        conn.execute("COMMIT")
        conn.close()
        return
    import psycopg

    assert schema is not None
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        pg_schema.migrate(conn, schema, 1)


def test_a_version_1_database_is_refused_then_migrates_forward(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    store_factory: Callable[..., Store],
    database_url: str,
) -> None:
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    at_version_1(backend, tmp_path, schema)
    execute(
        database_url,
        "INSERT INTO bgjobs_jobs"
        " (queue, name, payload, max_attempts, available_at, scheduled_at, created_at)"
        " VALUES ('q', 'w', '{}', 3, ?, ?, ?)",
        *((0, 0, 0) if backend == "sqlite" else ("2020-01-01 00:00:00+00",) * 3),
    )
    strict = store_factory(migrate=False)
    with pytest.raises(SchemaError, match=f"at version 1, this bgjobs needs {SCHEMA_VERSION}"):
        strict.open()
    store = store_factory()
    assert store.migrate() == (1, SCHEMA_VERSION)
    (job,) = store.claim(ClaimRequest("q", "h:1:a", 10, timedelta(minutes=1)))
    assert (job.name, job.attempt, job.rescues) == ("w", 1, 0), "old jobs are no suspects"
    lock = store.hold_node_lock("h:1:a")
    assert lock.key is not None
    lock.release()
