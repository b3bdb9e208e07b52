"""Whatever a runtime opened, stop() closes: build/start/stop cycles leave threads, file
descriptors and server connections flat, without waiting for a garbage collection. A pool the
caller passed in stays open. An outage costs one pool warning, not one per broken connection."""

from __future__ import annotations

import gc
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import ConnectionPool
from tests.conftest import PG_URL, require_postgres, wait_until
from tests.reliability.test_postgres_faults import terminate_backends

import bgjobs
from bgjobs import Store

CYCLES = 20


def server_connections(application_name: str) -> int:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Leaks must not hide behind a collection that happens to run mid-test."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def cycle(make_store: Callable[[], Store]) -> None:
    done = threading.Event()
    store = make_store()
    bg = (
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("q")
            .with_max_concurrent_jobs(4)
            .with_worker(bgjobs.worker("w", lambda job: done.set()))
        )
        .build()
    )
    bg.start()
    bg.enqueue("w", None)
    assert done.wait(10), "the job did not run"
    bg.stop(timeout=5)


def test_cycles_leave_threads_fds_and_connections_flat(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, no_gc: None
) -> None:
    application_name = f"bgjobs-leaks-{secrets.token_hex(3)}"
    if backend == "sqlite":

        def make_store() -> Store:
            return bgjobs.sqlite(tmp_path / "jobs.db")

    else:
        schema = request.getfixturevalue("pg_schema")

        def make_store() -> Store:
            return bgjobs.postgres(
                PG_URL, schema=schema, connect_kwargs={"application_name": application_name}
            )

    def figures() -> tuple[int, int, int]:
        connections = server_connections(application_name) if backend == "postgres" else 0
        return threading.active_count(), open_fds(), connections

    def at_most(limit: tuple[int, ...]) -> bool:
        return all(now <= most for now, most in zip(figures(), limit, strict=True))

    threads = threading.active_count()
    cycle(make_store)  # warm-up: imports, the schema
    # Threads end just after stop() returns (a joined loop's last step): wait, don't sleep.
    wait_until(lambda: threading.active_count() <= threads, 10, "the warm-up's threads to end")
    before = figures()
    for _ in range(CYCLES):
        cycle(make_store)
    wait_until(lambda: at_most(before), 10, f"threads, fds, connections back to {before}")


def test_a_pool_the_caller_passed_in_stays_open(pg_schema: str) -> None:
    require_postgres()
    pool: ConnectionPool = ConnectionPool(PG_URL, min_size=1, max_size=4, open=True)
    try:
        for _ in range(2):
            cycle(lambda: bgjobs.postgres(pool, schema=pg_schema))
        assert not pool.closed
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()


def enqueue_through_the_outage(bg: bgjobs.BgJobs) -> None:
    """An enqueue that meets a connection killed a moment ago fails (the caller decides)."""
    for _ in range(10):
        try:
            bg.enqueue("w", None)
            return
        except psycopg.OperationalError:
            continue
    raise AssertionError("enqueue kept failing after the outage")


def test_an_outage_logs_one_pool_warning(pg_schema: str, caplog: pytest.LogCaptureFixture) -> None:
    require_postgres()
    application_name = f"bgjobs-outage-{secrets.token_hex(3)}"
    store = bgjobs.postgres(
        PG_URL,
        schema=pg_schema,
        min_size=6,
        connect_kwargs={"application_name": application_name},
    )
    ran: list[int] = []
    bg = (
        bgjobs.new(store)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda j: ran.append(j.id))))
        .build()
    )
    with bg:
        bg.enqueue_many([("w", None)] * 20)
        wait_until(lambda: len(ran) == 20, 20, "the first jobs to run")
        wait_until(lambda: server_connections(application_name) >= 6, 10, "a full pool")
        with caplog.at_level(logging.WARNING, logger="psycopg.pool"):
            assert terminate_backends(application_name) >= 6
            for _ in range(20):  # every pooled connection is used, and found dead, again
                enqueue_through_the_outage(bg)
            wait_until(lambda: len(ran) == 40, 30, "the jobs after the outage to run")
    warnings = [r for r in caplog.records if "discarding closed connection" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
