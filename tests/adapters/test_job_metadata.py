"""What a job carries for observability (schema 8), on both stores: its metadata (the trace
context integrations store at enqueue) and the progress its handler reported."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from tests.adapters.test_contract import claim, err, new
from tests.conftest import PG_URL

from bgjobs.adapters.base import SCHEMA_VERSION, Completion, Outcome, ProgressUpdate, Store
from bgjobs.errors import SchemaError
from bgjobs.job import JobState, Progress, encode_meta

TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
RAW = encode_meta(TRACE)


def test_metadata_is_stored_with_the_job_and_kept_to_the_end(store: Store) -> None:
    (single,) = store.insert_jobs([new(raw_meta=RAW)])
    many = store.insert_jobs([new(raw_meta=RAW), new(), new(raw_meta=RAW, delay=timedelta(0))])
    assert single.meta == TRACE and [j.meta for j in many] == [TRACE, {}, TRACE]
    assert store.get_job(single.id).meta == TRACE  # type: ignore[union-attr]
    claimed = {job.id: job for job in claim(store)}
    assert claimed[single.id].meta == TRACE and claimed[many[1].id].meta == {}
    job = claimed[single.id]
    error = err()
    store.complete([Completion(job=job, node_id="n1", outcome=Outcome.FAILED, error=error)])
    archived = store.get_job(job.id)
    assert archived is not None and archived.state is JobState.FAILED
    assert archived.meta == TRACE
    assert store.retry_jobs([job.id]) == [job.id]
    assert store.get_job(job.id).meta == TRACE  # type: ignore[union-attr]


def test_plain_jobs_store_no_metadata_or_progress(store: Store) -> None:
    (job,) = store.insert_jobs([new()])
    assert job.raw_meta is None and job.meta == {} and job.progress is None
    (stored,) = claim(store)
    assert stored.raw_meta is None and stored.progress is None


def test_progress_is_fenced_on_node_and_attempt(store: Store) -> None:
    store.insert_jobs([new(), new()])
    first, second = claim(store)
    half = Progress(0.5, "half way")
    written = store.set_progress(
        [
            ProgressUpdate(first.id, "n1", first.attempt, half),
            ProgressUpdate(second.id, "other-node", second.attempt, half),
            ProgressUpdate(second.id, "n1", second.attempt + 1, half),
        ]
    )
    assert written == [first.id]
    assert store.get_job(first.id).progress == half  # type: ignore[union-attr]
    assert store.get_job(second.id).progress is None  # type: ignore[union-attr]
    assert store.set_progress([]) == []


def test_a_completion_writes_the_last_progress_with_the_outcome(store: Store) -> None:
    store.insert_jobs([new(), new(), new()])
    done, retried, unfenced = claim(store)
    store.set_progress([ProgressUpdate(done.id, "n1", done.attempt, Progress(0.2, "early"))])
    last = Progress(1.0, "all 10 resized")
    applied = store.complete(
        [
            Completion(job=done, node_id="n1", outcome=Outcome.SUCCEEDED, progress=last),
            Completion(
                job=retried,
                node_id="n1",
                outcome=Outcome.RETRY,
                error=err(),
                progress=Progress(0.3, "failed at 3/10"),
            ),
            Completion(job=unfenced, node_id="n2", outcome=Outcome.SUCCEEDED, progress=last),
        ]
    )
    assert [a.applied for a in applied] == [True, True, False]
    archived = store.get_job(done.id)
    assert archived is not None and archived.state is JobState.SUCCEEDED
    assert archived.progress == last
    # A retry keeps the failed attempt's last report until the next attempt reports its own.
    assert store.get_job(retried.id).progress == Progress(0.3, "failed at 3/10")  # type: ignore[union-attr]
    assert store.get_job(unfenced.id).progress is None  # type: ignore[union-attr]


def test_retry_by_an_operator_starts_without_progress(store: Store) -> None:
    (job,) = store.insert_jobs([new(max_attempts=1)])
    (job,) = claim(store)
    failed = Completion(
        job=job, node_id="n1", outcome=Outcome.FAILED, error=err(), progress=Progress(0.7, "x")
    )
    store.complete([failed])
    assert store.get_job(job.id).progress == Progress(0.7, "x")  # type: ignore[union-attr]
    store.retry_jobs([job.id])
    assert store.get_job(job.id).progress is None  # type: ignore[union-attr]


# Migrating a version-1 database ---------------------------------------------------------------
def _version_one(backend: str, tmp_path: Path, schema: str | None) -> None:
    """Create the version-1 schema with one waiting job, as bgjobs 0.1 left it."""
    insert = (
        "INSERT INTO {jobs} (queue, name, payload, max_attempts, available_at, created_at,"
        " scheduled_at) VALUES ('default', 'work', '1', 3, {now}, {now}, {now})"
    )
    if backend == "sqlite":
        from bgjobs.adapters.sqlite import schema as sqlite_schema

        conn = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        conn.execute("CREATE TABLE bgjobs_schema (version INTEGER PRIMARY KEY, applied_at INTEGER)")
        for statement in sqlite_schema.MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO bgjobs_schema VALUES (1, 0)")
        conn.execute(insert.format(jobs="bgjobs_jobs", now="1700000000000000"))
        conn.close()
        return
    import psycopg

    from bgjobs.adapters.postgres import schema as pg_schema

    assert schema is not None
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            pg_schema.compose(
                "CREATE TABLE {version} (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                schema,
            )
        )
        for statement in pg_schema.MIGRATIONS[1]:
            conn.execute(pg_schema.compose(statement, schema))
        conn.execute(pg_schema.compose("INSERT INTO {version} (version) VALUES (1)", schema))
        conn.execute(pg_schema.compose(insert.format(jobs="{jobs}", now="now()"), schema))


def test_a_version_one_database_migrates_forward_and_keeps_its_jobs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, store_factory: Callable
) -> None:
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    _version_one(backend, tmp_path, schema)
    with pytest.raises(SchemaError, match="bgjobs migrate"):
        store_factory(migrate=False).open()
    migrated = store_factory()
    assert migrated.open() == (1, SCHEMA_VERSION)
    (job,) = claim(migrated, node="n1")
    assert job.name == "work" and job.meta == {} and job.progress is None
    assert migrated.set_progress([ProgressUpdate(job.id, "n1", 1, Progress(0.5))]) == [job.id]
    assert store_factory(migrate=False).open() is None  # now current: accepted
