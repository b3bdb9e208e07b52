"""Enqueue and cancel inside the caller's transaction, on the caller's own connection.

What the database holds after commit and after rollback is read back through bgjobs' own
connection; the wake-up channel is watched directly (NOTIFY on Postgres, PRAGMA data_version on
SQLite) to show that a rollback wakes no one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from tests.conftest import PG_URL, Recorder, make_store, wait_until

import bgjobs
from bgjobs import CancelOutcome, JobState, Unique
from bgjobs.adapters.base import SCHEMA_VERSION, JobFilter, Store
from bgjobs.events import JobCancelled, JobEnqueued

HOUR = timedelta(hours=1)


class App:
    """The application's own connection to the store's database, and its users table."""

    def __init__(self, backend: str, store: Store, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        if backend == "sqlite":
            self.conn: Any = sqlite3.connect(store.path)  # type: ignore[attr-defined]
            self.conn.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email)")
            self.conn.commit()
            self.mark = "?"
        else:
            import psycopg

            schema = request.getfixturevalue("pg_schema")
            self.conn = psycopg.connect(PG_URL, options=f"-c search_path={schema}")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, email text)"
            )
            self.conn.commit()
            self.mark = "%s"

    def add_user(self, email: str) -> None:
        """An INSERT of the application's: it opens the transaction (both drivers' default)."""
        self.conn.execute(f"INSERT INTO users (email) VALUES ({self.mark})", (email,))

    def users(self) -> list[str]:
        rows = self.conn.execute("SELECT email FROM users ORDER BY id").fetchall()
        self.conn.commit()
        return [row[0] for row in rows]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def app(backend: str, store: Store, request: pytest.FixtureRequest) -> Iterator[App]:
    made = App(backend, store, request)
    yield made
    made.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = make_store("sqlite", tmp_path, None)
    yield store
    store.close()


@pytest.fixture
def pg_store(tmp_path: Path, pg_schema: str) -> Iterator[Store]:
    store = make_store("postgres", tmp_path, pg_schema)
    yield store
    store.close()


def build(store: Store, recorder: Recorder | None = None, poll: float = 0.1) -> bgjobs.BgJobs:
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue("mail")
        .with_poll_interval(poll)
        .with_worker(bgjobs.worker("welcome", lambda job: None))
    )
    return (spec.with_event_listener(recorder) if recorder else spec).build()


def jobs(store: Store) -> list[bgjobs.Job]:
    return store.list_jobs(JobFilter())


def test_a_job_enqueued_in_a_transaction_exists_only_if_it_commits(store: Store, app: App) -> None:
    recorder = Recorder()
    bg = build(store, recorder)
    app.add_user("bob")
    doomed = bg.enqueue("welcome", {"user": "bob"}, conn=app.conn)
    assert jobs(store) == [], "not visible before the commit"
    app.conn.rollback()
    assert jobs(store) == [] and store.get_job(doomed.id) is None and app.users() == []
    app.add_user("ada")
    kept = bg.enqueue("welcome", {"user": "ada"}, conn=app.conn)
    app.conn.commit()
    assert [j.id for j in jobs(store)] == [kept.id] and app.users() == ["ada"]
    events = recorder.of(JobEnqueued)
    assert [e.in_transaction for e in events] == [True, True]
    assert "not committed yet" in events[0].describe()


def test_enqueue_many_and_unique_jobs_in_a_transaction(store: Store, app: App) -> None:
    bg = build(store)
    app.add_user("ada")
    got = bg.enqueue_many(
        [
            bgjobs.JobRequest("welcome", {"user": "ada"}, unique=Unique()),
            bgjobs.JobRequest("welcome", {"user": "ada"}, unique=Unique()),
            ("welcome", {"user": "eve"}),
        ],
        conn=app.conn,
    )
    assert [j.duplicate for j in got] == [False, True, False]
    app.conn.rollback()
    assert jobs(store) == []
    fresh = bg.enqueue("welcome", {"user": "ada"}, unique=Unique())
    assert not fresh.duplicate, "the rolled-back job held no key"
    app.add_user("ada")
    assert bg.enqueue("welcome", {"user": "ada"}, unique=Unique(), conn=app.conn).id == fresh.id
    app.conn.commit()


def test_cancel_in_a_transaction(store: Store, app: App) -> None:
    recorder = Recorder()
    bg = build(store, recorder)
    job = bg.enqueue("welcome", delay=HOUR)
    app.add_user("ada")
    assert bg.cancel(job.id, conn=app.conn).outcome is CancelOutcome.CANCELLED
    app.conn.rollback()
    still = store.get_job(job.id)
    assert still is not None and still.state is JobState.SCHEDULED
    app.add_user("ada")
    bg.cancel(job.id, conn=app.conn)
    app.conn.commit()
    done = store.get_job(job.id)
    assert done is not None and done.state is JobState.CANCELLED
    assert [e.in_transaction for e in recorder.of(JobCancelled)] == [True, True]


def test_a_connection_that_would_commit_each_statement_is_refused(store: Store) -> None:
    bg = build(store)
    if store.backend == "sqlite":
        conn: Any = sqlite3.connect(store.path, isolation_level=None)  # type: ignore[attr-defined]
    else:
        import psycopg

        conn = psycopg.connect(PG_URL, autocommit=True)
    with pytest.raises(bgjobs.ConfigError, match="not inside a transaction"):
        bg.enqueue("welcome", conn=conn)
    with pytest.raises(bgjobs.ConfigError, match="must be"):
        bg.enqueue("welcome", conn="postgresql://elsewhere")
    assert jobs(store) == []
    conn.close()


def test_sqlite_needs_an_open_transaction(sqlite_store: Store) -> None:
    """Python's sqlite3 would begin one only before a write, after bgjobs' first read: the
    caller must have begun it (with a write of its own, or BEGIN)."""
    bg = build(sqlite_store)
    sqlite_store.open()
    conn = sqlite3.connect(sqlite_store.path)  # type: ignore[attr-defined]
    with pytest.raises(bgjobs.ConfigError, match="not inside a transaction"):
        bg.enqueue("welcome", conn=conn)
    conn.execute("BEGIN IMMEDIATE")
    job = bg.enqueue("welcome", conn=conn)
    conn.commit()
    assert [j.id for j in jobs(sqlite_store)] == [job.id]


def test_postgres_lets_psycopg_open_the_transaction(pg_store: Store) -> None:
    """Not in autocommit, psycopg's first statement opens a transaction that stays open until
    the caller commits, as Django's and SQLAlchemy's connections do before their first query."""
    import psycopg

    bg = build(pg_store)
    with psycopg.connect(PG_URL) as conn:
        job = bg.enqueue("welcome", conn=conn)
        assert jobs(pg_store) == []
        conn.commit()
    assert [j.id for j in jobs(pg_store)] == [job.id]


def test_sqlite_refuses_a_connection_to_another_file(sqlite_store: Store, tmp_path: Path) -> None:
    store = sqlite_store
    bg = build(store)
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(bgjobs.ConfigError, match=r"other\.db, not to this store's file"):
        bg.enqueue("welcome", conn=other)
    memory = sqlite3.connect(":memory:")
    memory.execute("CREATE TABLE t (x)")
    memory.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(bgjobs.ConfigError, match="in-memory database"):
        bg.enqueue("welcome", conn=memory)


def test_sqlite_accepts_a_sqlite_utils_database(sqlite_store: Store) -> None:
    store = sqlite_store
    bg = build(store)
    db = sqlite_utils.Database(store.path)  # type: ignore[attr-defined]
    with db.atomic():
        db["users"].insert({"email": "eve"})
        needs = f"version 0, this bgjobs needs {SCHEMA_VERSION}"
        with pytest.raises(bgjobs.SchemaError, match=needs):
            bg.enqueue("welcome", conn=db)
    store.open()  # as bg.start() or bgjobs migrate would, before the app's transactions
    db["users"].delete_where()
    with pytest.raises(RuntimeError, match="changed my mind"), db.atomic():
        db["users"].insert({"email": "bob"})
        bg.enqueue("welcome", {"user": "bob"}, conn=db)
        raise RuntimeError("changed my mind")
    assert jobs(store) == [] and db["users"].count == 0
    with db.atomic():
        db["users"].insert({"email": "ada"})
        job = bg.enqueue("welcome", {"user": "ada"}, conn=db)
    assert [j.id for j in jobs(store)] == [job.id] and db["users"].count == 1
    db.close()


def test_postgres_refuses_a_failed_transaction_and_another_database(pg_store: Store) -> None:
    store = pg_store
    import psycopg

    bg = build(store)
    with psycopg.connect(PG_URL) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1/0")
        with pytest.raises(bgjobs.ConfigError, match="failed transaction"):
            bg.enqueue("welcome", conn=conn)
    elsewhere = PG_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(elsewhere) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(bgjobs.ConfigError, match="database 'postgres'"):
            bg.enqueue("welcome", conn=conn)


def test_postgres_async_connection_through_aenqueue(pg_store: Store) -> None:
    store = pg_store
    import psycopg

    bg = build(store)
    waiting = bg.enqueue("welcome", delay=HOUR)

    async def main() -> tuple[int, int]:
        async with await psycopg.AsyncConnection.connect(PG_URL) as conn:
            with pytest.raises(RuntimeError, match="roll back"):
                async with conn.transaction():
                    await bg.aenqueue("welcome", {"user": "bob"}, conn=conn)
                    raise RuntimeError("roll back")
            async with conn.transaction():
                job = await bg.aenqueue("welcome", {"user": "ada"}, conn=conn)
                (dup,) = await bg.aenqueue_many(
                    [bgjobs.JobRequest("welcome", {"user": "ada"}, unique=Unique())], conn=conn
                )
                cancelled = await bg.acancel(waiting.id, conn=conn)
                assert cancelled.outcome is CancelOutcome.CANCELLED
                assert not dup.duplicate
            with pytest.raises(bgjobs.ConfigError, match="aenqueue"):
                async with conn.transaction():
                    bg.enqueue("welcome", conn=conn)
            return job.id, dup.id

    first, second = asyncio.run(main())
    assert sorted(j.id for j in jobs(store) if not j.state.is_finished) == [first, second]
    done = store.get_job(waiting.id)
    assert done is not None and done.state is JobState.CANCELLED


def test_sqlite_refuses_aenqueue_with_a_connection(sqlite_store: Store) -> None:
    bg = build(sqlite_store)
    conn = sqlite3.connect(sqlite_store.path)  # type: ignore[attr-defined]
    conn.execute("BEGIN")
    with pytest.raises(bgjobs.ConfigError, match="only on Postgres"):
        asyncio.run(bg.aenqueue("welcome", conn=conn))
    conn.close()


@pytest.mark.parametrize(("ending", "duplicate"), [("rollback", False), ("commit", True)])
def test_postgres_unique_enqueue_waits_for_the_other_transaction(
    pg_store: Store, ending: str, duplicate: bool
) -> None:
    """A second transaction enqueueing the same key waits for the first: if that rolls back,
    the second inserts; if it commits, the second gets the first's job back."""
    import psycopg

    bg = build(pg_store)
    results: list[bgjobs.Job] = []
    app_name = f"second-{ending}"
    with (
        psycopg.connect(PG_URL) as first,
        psycopg.connect(PG_URL, application_name=app_name) as second,
    ):
        first.execute("SELECT 1")
        held = bg.enqueue("welcome", unique=Unique(), conn=first)
        second.execute("SELECT 1")

        def enqueue_second() -> None:
            results.append(bg.enqueue("welcome", unique=Unique(), conn=second))

        thread = threading.Thread(target=enqueue_second)
        thread.start()
        wait_until(lambda: waits_on_a_lock(app_name), 10, "the second to wait for the first")
        getattr(first, ending)()
        thread.join(10)
        second.commit()
    (got,) = results
    assert got.duplicate is duplicate and (got.id == held.id) is duplicate


def waits_on_a_lock(application: str) -> bool:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application,),
        ).fetchone()
    return row is not None and row[0] == 1


def test_a_rollback_leaves_nothing_to_wake_a_node_with(store: Store, app: App) -> None:
    """What nodes wake on: a NOTIFY (Postgres), a changed PRAGMA data_version (SQLite). The
    rolled-back enqueue (queue "quiet") produces neither; the committed one ("mail") does."""
    bg = (
        bgjobs.new(store)
        .with_queue(bgjobs.queue("mail").with_worker(bgjobs.worker("welcome", lambda j: None)))
        .with_queue(bgjobs.queue("quiet").with_worker(bgjobs.worker("nothing", lambda j: None)))
        .build()
    )
    bg.enqueue("nothing", delay=HOUR)  # opens (and migrates) the store before watching
    if store.backend == "sqlite":
        watcher = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        before = watcher.execute("PRAGMA data_version").fetchone()
        app.add_user("bob")
        bg.enqueue("nothing", conn=app.conn)
        app.conn.rollback()
        assert watcher.execute("PRAGMA data_version").fetchone() == before, "rollback: no wake"
        app.add_user("ada")
        bg.enqueue("welcome", conn=app.conn)
        app.conn.commit()
        assert watcher.execute("PRAGMA data_version").fetchone() != before, "commit: wake"
        watcher.close()
        return
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as listener:
        listener.execute(f'LISTEN "{store.notify_channel}"')  # type: ignore[attr-defined]
        app.add_user("bob")
        bg.enqueue("nothing", conn=app.conn)
        app.conn.rollback()
        app.add_user("ada")
        bg.enqueue("welcome", conn=app.conn)
        app.conn.commit()
        first = next(iter(listener.notifies(timeout=10, stop_after=1)), None)
        assert first is not None and first.payload == "mail", "the rollback notified no one"


def test_a_commit_wakes_a_running_node(store: Store, app: App, started: Callable) -> None:
    """The node polls every 30 s, so only the wake-up can make it run the job promptly."""
    ran = threading.Event()
    bg = started(
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("mail")
            .with_poll_interval(30)
            .with_worker(bgjobs.worker("welcome", lambda job: ran.set()))
        )
        .build()
    )
    app.add_user("ada")
    bg.enqueue("welcome", conn=app.conn)
    assert not ran.wait(0.2), "not before the commit"
    app.conn.commit()
    assert ran.wait(10), "the commit woke the node"
