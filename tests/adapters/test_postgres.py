"""Postgres-only behaviour of the store: URLs and schemas, NOTIFY wake-ups, connection loss,
concurrent migrations. Everything runs against the real server (see tests/conftest.py)."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool
from tests.conftest import PG_URL, require_postgres, wait_until

import bgjobs
from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    ClaimRequest,
    Completion,
    JobFilter,
    NodeInfo,
    Outcome,
    ScheduleRegistration,
    schedule_key,
)
from bgjobs.adapters.postgres import PostgresStore
from bgjobs.adapters.postgres.listener import NotifyListener
from bgjobs.errors import ConfigError, DatabaseURLError, SchemaError
from bgjobs.job import JobState, NewJob

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)
Factory = Callable[..., PostgresStore]


def new(queue: str = "default", **kw: Any) -> NewJob:
    fields: dict[str, Any] = {
        "queue": queue,
        "name": "work",
        "raw_payload": '{"n": 1}',
        "max_attempts": 3,
    }
    fields.update(kw)
    return NewJob(**fields)


def claim(
    store: PostgresStore,
    queue: str = "default",
    node: str = "n1",
    limit: int = 10,
    blocking: bool = False,
) -> list[Any]:
    return store.claim(
        ClaimRequest(queue=queue, node_id=node, limit=limit, lease=LEASE, blocking=blocking)
    )


def admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_URL, autocommit=True)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@pytest.fixture
def make(pg_schema: str) -> Iterator[Factory]:
    """Stores on this test's schema (several = several nodes); closed afterwards."""
    made: list[PostgresStore] = []

    def factory(**options: Any) -> PostgresStore:
        options.setdefault("schema", pg_schema)
        store = PostgresStore(options.pop("url", PG_URL), **options)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


@pytest.fixture
def second_schema() -> Iterator[str]:
    require_postgres()
    name = unique_name("bgjobs_test2")
    yield name
    with admin() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


class Wakes:
    """Collects on_wake / on_channel calls from a listener thread."""

    def __init__(self) -> None:
        self.queues: list[str | None] = []
        self.channel: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def on_wake(self, queue: str | None) -> None:
        with self._lock:
            self.queues.append(queue)

    def on_channel(self, kind: str, error: str | None) -> None:
        with self._lock:
            self.channel.append((kind, error))

    def saw(self, queue: str) -> bool:
        with self._lock:
            return queue in self.queues

    def kinds(self) -> list[str]:
        with self._lock:
            return [kind for kind, _ in self.channel]


def listen(store: PostgresStore) -> tuple[Wakes, NotifyListener]:
    wakes = Wakes()
    listener = store.start_wakeup(wakes.on_wake, wakes.on_channel)
    assert isinstance(listener, NotifyListener)
    assert listener.listening.wait(10), "LISTEN did not start"
    return wakes, listener


def marker(store: PostgresStore, wakes: Wakes, name: str) -> None:
    """Send a notification on the store's channel and wait for it: everything committed before
    it has been delivered by then (one channel delivers in commit order)."""
    with admin() as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (store.notify_channel, name))
    wait_until(lambda: wakes.saw(name), 10, f"marker {name}")


def backends(application_name: str, query_like: str = "%") -> list[int]:
    with admin() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND query LIKE %s"
            " AND pid <> pg_backend_pid()",
            (application_name, query_like),
        ).fetchall()
    return [row[0] for row in rows]


def terminate(pids: list[int]) -> None:
    with admin() as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


# URLs, schemas and identifiers ---------------------------------------------------------------
def test_url_schema_parameter_is_honoured_stripped_and_created(pg_schema: str) -> None:
    url = f"{PG_URL}?application_name=bgjobs-url-test&schema={pg_schema}"
    store = bgjobs.open_store(url)
    assert isinstance(store, PostgresStore)
    try:
        assert store.schema == pg_schema
        assert "schema=" not in store._target.conninfo
        assert "application_name=bgjobs-url-test" in store._target.conninfo
        assert store.open() == (0, SCHEMA_VERSION)
        assert f"schema={pg_schema}" in store.display_url
        with admin() as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s", (pg_schema,)
                )
            }
        assert {
            "bgjobs_jobs",
            "bgjobs_archive",
            "bgjobs_nodes",
            "bgjobs_schedules",
            "bgjobs_schema",
        } <= tables
    finally:
        store.close()


def test_display_url_masks_passwords() -> None:
    store = PostgresStore(
        "postgresql://alice:s3cret@db.example:5432/app?schema=jobs&password=other&sslmode=prefer"
    )
    assert "s3cret" not in store.display_url and "other" not in store.display_url
    assert store.display_url.startswith("postgresql://alice:***@db.example:5432/app?")
    assert "schema=jobs" in store.display_url and "sslmode=prefer" in store.display_url
    assert "s3cret" not in repr(store)
    keyword = PostgresStore("host=db.example user=alice password=s3cret dbname=app", schema="jobs")
    assert "s3cret" not in keyword.display_url and "password=***" in keyword.display_url
    assert keyword.schema == "jobs"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h:notaport/db",
        "mysql://u@h/db",
        "postgresql://u@h/db?schema=",
        "postgresql://u@h/db?schema=a&schema=b",
        "postgresql://u@h/db?no_such_option=1",
        "postgresql://u:hunter2@h/db?schema=x%22%3B%20drop%20table%20y%3B%20--",
    ],
)
def test_bad_urls_raise_database_url_error(url: str) -> None:
    with pytest.raises(DatabaseURLError) as info:
        PostgresStore(url)
    assert "hunter2" not in str(info.value)
    if url.startswith("postgresql://"):
        with pytest.raises(DatabaseURLError):
            bgjobs.open_store(url)


@pytest.mark.parametrize(
    "name",
    [
        'x"; drop table y; --',
        "",
        "1abc",
        "a-b",
        "sp ace",
        "pg_catalog",
        "PG_x",
        "a" * 64,
        "é",
    ],
)
def test_schema_names_are_validated_before_any_sql(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid Postgres schema name") as info:
        PostgresStore(PG_URL, schema=name)
    assert repr(name) in str(info.value)


def test_identifiers_are_quoted_not_interpolated(make: Factory, pg_schema: str) -> None:
    """A valid but case-sensitive name round-trips through sql.Identifier (it would not if the
    name were pasted into SQL unquoted)."""
    mixed = pg_schema.replace("bgjobs", "BgJobs")
    store = make(schema=mixed)
    try:
        store.open()
        store.insert_jobs([new()])
        with admin() as conn:
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(mixed, "bgjobs_jobs"))
            ).fetchone()
        assert count == (1,)
    finally:
        store.close()
        with admin() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(mixed)))


def test_conflicting_schema_and_bad_channel_are_refused() -> None:
    with pytest.raises(ConfigError, match="disagrees"):
        PostgresStore(f"{PG_URL}?schema=one", schema="two")
    assert PostgresStore(f"{PG_URL}?schema=same", schema="same").schema == "same"
    with pytest.raises(ConfigError, match="NOTIFY channel"):
        PostgresStore(PG_URL, notify_channel="bad channel; --")


# Isolation and wake-ups ----------------------------------------------------------------------
def test_two_schemas_in_one_database_share_nothing(
    make: Factory, pg_schema: str, second_schema: str
) -> None:
    one, two = make(), make(schema=second_schema)
    one.open()
    two.open()
    assert one.notify_channel != two.notify_channel
    wakes_one, _ = listen(one)
    wakes_two, _ = listen(two)
    now = one.now()
    one.heartbeat(NodeInfo("n:1:a", "n", 1, now, now, ("shared",)))
    one.insert_jobs([new("shared"), new("shared")])
    wait_until(lambda: wakes_one.saw("shared"), 10, "own wake-up")
    two.insert_jobs([new("marker")])
    wait_until(lambda: wakes_two.saw("marker"), 10, "marker in the other schema")
    assert wakes_two.queues == ["marker"], "a wake-up crossed schemas"
    assert not wakes_one.saw("marker")
    assert claim(two, "shared") == [] and two.list_nodes() == []
    assert [j.queue for j in two.list_jobs(JobFilter())] == ["marker"]
    assert len(claim(one, "shared")) == 2


def test_notify_fires_on_commit_and_not_on_rollback(make: Factory) -> None:
    store = make()
    store.open()
    wakes, _ = listen(store)
    # The insert statement inside a transaction we control: nothing until COMMIT.
    with psycopg.connect(PG_URL) as conn:
        conn.execute(store._q.insert_now, ("tx", "work", "{}", 0, 3, store.notify_channel))
        marker(store, wakes, "before-commit")
        assert not wakes.saw("tx"), "NOTIFY was delivered before the insert committed"
        conn.commit()
    wait_until(lambda: wakes.saw("tx"), 10, "wake-up after commit")
    with psycopg.connect(PG_URL) as conn:
        conn.execute(store._q.insert_now, ("rolled", "work", "{}", 0, 3, store.notify_channel))
        conn.rollback()
    # A failing batch through the store rolls back as a whole: no job, no wake-up.
    with pytest.raises(psycopg.DataError):
        store.insert_jobs([new("bad"), new("bad", priority=2**40)])
    marker(store, wakes, "after-rollbacks")
    assert not wakes.saw("rolled") and not wakes.saw("bad")
    assert store.list_jobs(JobFilter(queue="bad")) == []
    assert store.list_jobs(JobFilter(queue="rolled")) == []


def test_release_and_retry_wake_other_nodes(make: Factory) -> None:
    store = make()
    store.open()
    job = store.insert_jobs([new("given-back", max_attempts=1)])[0]
    wakes, _ = listen(store)
    claimed = claim(store, "given-back")
    assert [j.id for j in store.release("n1", [claimed[0].id])] == [job.id]
    wait_until(lambda: wakes.queues.count("given-back") == 1, 10, "wake-up on release")
    claimed = claim(store, "given-back")
    store.complete([Completion(job=claimed[0], node_id="n1", outcome=Outcome.DISCARDED)])
    assert store.retry_jobs([job.id]) == [job.id]
    wait_until(lambda: wakes.queues.count("given-back") == 2, 10, "wake-up on retry")


# Connection loss -----------------------------------------------------------------------------
def test_listener_reconnects_after_its_backend_is_terminated(make: Factory) -> None:
    app = unique_name("bgjobs-test-listen")
    store = make(connect_kwargs={"application_name": app})
    store.open()
    wakes, listener = listen(store)
    pids = backends(app, "LISTEN%")
    assert len(pids) == 1
    terminate(pids)
    wait_until(lambda: wakes.kinds()[:2] == ["lost", "restored"], 15, "lost then restored")
    assert wakes.channel[0][1], "the lost event carries the error"
    assert backends(app, "LISTEN%") not in ([], pids)
    store.insert_jobs([new("after-reconnect")])
    wait_until(lambda: wakes.saw("after-reconnect"), 10, "wake-up on the new connection")
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 1.5 and not listener.alive


def test_store_works_again_after_all_its_backends_are_terminated(make: Factory) -> None:
    app = unique_name("bgjobs-test-kill")
    store = make(connect_kwargs={"application_name": app}, min_size=3, max_size=6)
    store.open()
    store.insert_jobs([new() for _ in range(5)])
    # Fill the pool with several connections, all idle afterwards.
    barrier = threading.Barrier(6)

    def busy() -> None:
        barrier.wait()
        with store._conn() as conn:
            conn.execute("SELECT pg_sleep(0.05)")

    threads = [threading.Thread(target=busy) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    victims = backends(app)
    assert len(victims) >= 3
    terminate(victims)
    wait_until(lambda: not set(backends(app)) & set(victims), 10, "backends gone")
    # Every call works at once: dead pooled connections are noticed and replaced, not used.
    jobs = claim(store, limit=2)
    assert len(jobs) == 2
    assert all(
        r.applied
        for r in store.complete(
            [Completion(job=j, node_id="n1", outcome=Outcome.SUCCEEDED) for j in jobs]
        )
    )
    assert store.insert_jobs([new()])[0].state is JobState.AVAILABLE
    assert store.now().tzinfo is not None
    assert store.queue_stats(timedelta(minutes=1))[0].available == 4
    assert store.next_due_at("default") is not None


# Lock order --------------------------------------------------------------------------------
def test_lease_extension_never_deadlocks_with_completions(make: Factory) -> None:
    """Maintenance extends all of a node's leases while its completer finishes the same rows
    in another order, on another connection: that must never deadlock."""
    store = make()
    store.open()
    store.insert_jobs([new() for _ in range(1000)])
    jobs = claim(store, limit=1000)
    random.Random(7).shuffle(jobs)
    deadlocks: list[Exception] = []
    done = threading.Event()

    def extend() -> None:
        while not done.is_set():
            try:
                store.extend_leases("n1", LEASE)
            except psycopg.errors.DeadlockDetected as exc:
                deadlocks.append(exc)

    extender = threading.Thread(target=extend)
    extender.start()
    try:
        for start in range(0, len(jobs), 25):
            try:
                store.complete(
                    [
                        Completion(job=j, node_id="n1", outcome=Outcome.SUCCEEDED)
                        for j in jobs[start : start + 25]
                    ]
                )
            except psycopg.errors.DeadlockDetected as exc:
                deadlocks.append(exc)
    finally:
        done.set()
        extender.join(10)
    assert deadlocks == []


def test_schedule_registration_locks_in_the_same_order_as_completion(
    make: Factory, pg_schema: str
) -> None:
    """complete() deletes a scheduled run, then updates its schedule row; a registration racing
    it must take the rows in that order too, or the two deadlock."""
    store = make()
    store.open()
    run = new(name="tick", unique_key=schedule_key("tick"), schedule="tick")
    registration = ScheduleRegistration("tick", "every 1m", run)
    store.register_schedule(registration, "default")
    running = claim(store)[0]
    outcome: list[object] = []
    app = unique_name("bgjobs-test-order")
    other = make(connect_kwargs={"application_name": app})
    other.open()
    with psycopg.connect(PG_URL) as conn:  # plays complete(): job row first...
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE id = %s").format(
                sql.Identifier(pg_schema, "bgjobs_jobs")
            ),
            (running.id,),
        )

        def register() -> None:
            try:
                outcome.append(other.register_schedule(registration, "default"))
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=register)
        thread.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock'"
        )
        with admin() as watcher:
            wait_until(
                lambda: watcher.execute(waiting, (app,)).fetchone() == (1,),
                10,
                "the registration to wait for the job row",
            )
        conn.execute(  # ...then the schedule row: must not wait on the registration
            sql.SQL("UPDATE {} SET last_outcome = 'succeeded' WHERE name = 'tick'").format(
                sql.Identifier(pg_schema, "bgjobs_schedules")
            )
        )
        conn.commit()
    thread.join(10)
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome


# Migrations ----------------------------------------------------------------------------------
def test_concurrent_migrations_apply_once(pg_schema: str) -> None:
    stores = [PostgresStore(PG_URL, schema=pg_schema) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[Any] = []
    lock = threading.Lock()

    def run(store: PostgresStore) -> None:
        barrier.wait()
        try:
            result: Any = store.migrate()
        except Exception as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == [(0, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 3, (
        outcomes
    )
    with admin() as conn:
        rows = conn.execute(
            sql.SQL("SELECT version FROM {}").format(sql.Identifier(pg_schema, "bgjobs_schema"))
        ).fetchall()
    assert rows == [(version,) for version in range(1, SCHEMA_VERSION + 1)], "each applied once"


def test_migrate_false_on_an_empty_schema_names_the_command(make: Factory, pg_schema: str) -> None:
    url = f"{PG_URL}?schema={pg_schema}"
    missing = make(url=url, schema=None, migrate=False)
    with pytest.raises(SchemaError, match=r"bgjobs migrate --database \S+schema=") as info:
        missing.open()
    assert "version 0" in str(info.value)
    with admin() as conn:  # an existing but empty schema is the same situation
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg_schema)))
    with pytest.raises(SchemaError, match="bgjobs migrate --database"):
        make(migrate=False).open()
    assert make(migrate=False).schema_version() == 0
    assert make().open() == (0, SCHEMA_VERSION)
    checked = make(migrate=False)
    assert checked.open() is None and checked.schema_version() == SCHEMA_VERSION


def test_a_newer_schema_is_refused(make: Factory, pg_schema: str) -> None:
    make().migrate()
    with admin() as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(
                sql.Identifier(pg_schema, "bgjobs_schema")
            ),
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(SchemaError, match="newer"):
        make().open()
    with pytest.raises(SchemaError, match="Upgrade bgjobs"):
        make(migrate=False).open()


# Claims and completions ----------------------------------------------------------------------
def claim_at_once(nodes: list[PostgresStore], queue: str) -> list[tuple[str, Any]]:
    """Every node tries a blocking claim at the same moment; returns (node, job) per success."""
    barrier = threading.Barrier(len(nodes))
    got: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def attempt(store: PostgresStore, name: str) -> None:
        barrier.wait()
        jobs = claim(store, queue, node=name, blocking=True)
        with lock:
            got.extend((name, job) for job in jobs)

    threads = [threading.Thread(target=attempt, args=(s, f"node{i}")) for i, s in enumerate(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return got


def test_blocking_queue_never_runs_two_jobs_across_nodes(make: Factory) -> None:
    nodes = [make(), make(), make()]
    for node in nodes:
        node.open()
    ids = [j.id for j in nodes[0].insert_jobs([new("serial") for _ in range(6)])]
    ran: list[int] = []
    for _ in range(len(ids)):
        got = claim_at_once(nodes, "serial")
        assert len(got) == 1, f"{len(got)} nodes claimed from a blocking queue at once"
        name, job = got[0]
        for store in nodes:  # while it runs, nobody gets the next one
            assert claim(store, "serial", node="late", blocking=True) == []
        ran.append(job.id)
        nodes[0].complete([Completion(job=job, node_id=name, outcome=Outcome.SUCCEEDED)])
    assert ran == ids, "blocking queues run in FIFO order"


def test_claim_skips_rows_locked_by_another_transaction(make: Factory, pg_schema: str) -> None:
    store = make()
    store.open()
    first, second = store.insert_jobs([new(), new()])
    with psycopg.connect(PG_URL) as conn:
        conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE").format(
                sql.Identifier(pg_schema, "bgjobs_jobs")
            ),
            (first.id,),
        )
        started = time.monotonic()
        assert [j.id for j in claim(store)] == [second.id]
        assert time.monotonic() - started < 2
        conn.rollback()
    assert [j.id for j in claim(store)] == [first.id]


def test_duplicate_completions_in_one_batch_apply_once(make: Factory) -> None:
    store = make()
    store.open()
    store.insert_jobs([new()])
    job = claim(store)[0]
    done = Completion(job=job, node_id="n1", outcome=Outcome.SUCCEEDED)
    assert [r.applied for r in store.complete([done, done])] == [True, False]


def test_batch_insert_keeps_order_and_skips_taken_unique_keys(make: Factory) -> None:
    store = make()
    store.open()
    later = store.now() + timedelta(hours=1)
    got = store.insert_jobs(
        [
            new(name="a", unique_key="k"),
            new(name="b"),
            new(name="c", unique_key="k"),
            new(name="d", available_at=later),
            new(name="e", delay=timedelta(days=1)),
        ]
    )
    assert [j.name for j in got] == ["a", "b", "d", "e"]
    assert [j.id for j in got] == sorted(j.id for j in got)
    assert [j.state for j in got] == [JobState.AVAILABLE] * 2 + [JobState.SCHEDULED] * 2
    assert got[2].available_at == later
    assert got[3].available_at - got[3].created_at == timedelta(days=1)


def test_next_due_at_finds_the_earliest_time_across_priorities(make: Factory) -> None:
    """next_due_at is a loose scan of the claim index, one probe per priority."""
    store = make()
    store.open()
    now = store.now()
    assert store.next_due_at("default") is None
    times = {5: now + timedelta(hours=3), 0: now + timedelta(hours=2), 9: now + timedelta(hours=1)}
    store.insert_jobs([new(priority=p, available_at=t) for p, t in times.items()])
    store.insert_jobs([new(priority=0, available_at=now + timedelta(hours=4))])
    store.insert_jobs([new(queue="other", available_at=now + timedelta(minutes=1))])
    assert store.next_due_at("default") == times[9]
    soonest = store.insert_jobs([new(priority=3, available_at=now - timedelta(seconds=1))])[0]
    assert store.next_due_at("default") == soonest.available_at
    assert [j.id for j in claim(store)] == [soonest.id]  # running jobs are not "due"
    assert store.next_due_at("default") == times[9]


def test_ids_are_never_reused_between_hot_table_and_archive(make: Factory) -> None:
    store = make()
    store.open()
    first = store.insert_jobs([new(max_attempts=1)])[0]
    job = claim(store)[0]
    store.complete([Completion(job=job, node_id="n1", outcome=Outcome.FAILED)])
    second = store.insert_jobs([new()])[0]
    assert second.id > first.id
    assert store.retry_jobs([first.id]) == [first.id]
    assert store.get_job(first.id) is not None
    assert store.delete_job(second.id)
    third = store.insert_jobs([new()])[0]
    assert third.id > second.id


@pytest.mark.parametrize(
    "payload",
    [
        '{"b": 1,  "a": [1.0, 1e5, -0.0]}',
        '"caf\u00e9 \\u0000 \U0001f600"',
        "not json at all",
        "null",
    ],
)
def test_payload_text_round_trips_exactly(make: Factory, payload: str) -> None:
    store = make()
    store.open()
    single = store.insert_jobs([new(raw_payload=payload)])[0]
    batch = store.insert_jobs([new(raw_payload=payload), new(raw_payload=payload)])
    assert single.raw_payload == payload
    for job in [single, *batch]:
        fetched = store.get_job(job.id)
        assert fetched is not None and fetched.raw_payload == payload
    assert {j.raw_payload for j in claim(store)} == {payload}


def test_times_come_from_the_database_clock(make: Factory) -> None:
    store = make()
    store.open()
    before = store.now()
    job = store.insert_jobs([new()])[0]
    after = store.now()
    assert before.tzinfo is UTC and job.created_at.tzinfo is UTC
    assert before <= job.created_at <= after
    with admin() as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None and abs(row[0] - store.now()) < timedelta(seconds=5)


def test_accepts_a_pool_it_does_not_own(pg_schema: str) -> None:
    # Not autocommit, and a session time zone that is not UTC: bgjobs must cope with both.
    pool: ConnectionPool[Any] = ConnectionPool(
        PG_URL,
        min_size=1,
        max_size=2,
        open=True,
        kwargs={"options": "-c TimeZone=America/New_York"},
    )
    try:
        store = PostgresStore(pool, schema=pg_schema)
        store.open()
        job = store.insert_jobs([new(delay=timedelta(days=1))])[0]
        assert job.created_at.tzinfo is UTC
        assert job.available_at - job.created_at == timedelta(days=1)
        with admin() as conn:  # committed, not left in a transaction the pool rolls back
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(pg_schema, "bgjobs_jobs"))
            ).fetchone()
        assert row == (1,)
        store.close()
        assert not pool.closed
        with pool.connection() as conn:
            assert conn.autocommit is False
    finally:
        pool.close()


# A whole server going away -------------------------------------------------------------------
class PrivateServer:
    """A throwaway Postgres cluster on its own port, so stopping it disturbs nobody."""

    def __init__(self, root: Path) -> None:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.root = root
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root; run the cluster as the postgres user then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(root, "postgres")
        self._ctl = [
            *self._as,
            f"{bindir}/pg_ctl",
            "-D",
            str(root / "data"),
            "-l",
            str(root / "log"),
            "-o",
            f"-p {self.port} -k {root}",
        ]
        self._run(
            [
                *self._as,
                f"{bindir}/initdb",
                "-D",
                str(root / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
            ]
        )

    def _run(self, command: list[str]) -> None:
        subprocess.run(command, capture_output=True, check=True, timeout=60)

    def start(self) -> None:
        self._run([*self._ctl, "-w", "start"])

    def stop(self) -> None:
        self._run([*self._ctl, "-m", "fast", "-w", "stop"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    # Directly under /tmp: the postgres user must be able to reach it (pytest's dirs are 0700).
    root = Path(tempfile.mkdtemp(prefix="bgjobs-pg-"))
    try:
        try:
            server = PrivateServer(root)
            server.start()
        except (OSError, subprocess.SubprocessError, KeyError, LookupError) as exc:
            pytest.skip(f"cannot run a private Postgres cluster here: {exc}")
        yield server
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_store_and_listener_recover_after_a_server_restart(
    private_server: PrivateServer,
) -> None:
    store = PostgresStore(private_server.url, schema="bgjobs", pool_timeout=1.0)
    try:
        store.open()
        wakes, _ = listen(store)
        store.insert_jobs([new()])
        private_server.stop()
        with pytest.raises(psycopg.Error):
            store.insert_jobs([new()])
        wait_until(lambda: "lost" in wakes.kinds(), 10, "the listener to notice")
        private_server.start()
        restarted = time.monotonic()

        def works() -> bool:
            try:
                return len(store.insert_jobs([new("back")])) == 1
            except psycopg.Error:
                return False

        wait_until(works, 10, "the store to work again")
        recovered = time.monotonic() - restarted
        assert recovered < 5, f"the pool took {recovered:.1f}s to reconnect"
        wait_until(lambda: wakes.kinds()[-1:] == ["restored"], 10, "the listener to reconnect")
        # (Wake-ups sent while it was away are lost; the runtime polls all queues on "restored".)
        store.insert_jobs([new("after-restore")])
        wait_until(lambda: wakes.saw("after-restore"), 10, "a wake-up on the new connection")
        assert len(claim(store, "default")) == 1, "the job from before the outage is there"
    finally:
        store.close()
