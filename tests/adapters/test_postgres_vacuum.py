"""The hot table does not wear down: when dead rows pile up and autovacuum does not remove them,
bgjobs vacuums the table itself, from one node at a time.

Autovacuum is switched off for the test's table, so the test holds whatever the server does.
The threshold is lowered so that a few thousand jobs are enough to cross it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from tests.conftest import PG_URL, require_postgres, wait_until

import bgjobs
from bgjobs.adapters.postgres import vacuum
from bgjobs.adapters.postgres.schema import lock_key
from bgjobs.adapters.postgres.vacuum import worth_vacuuming
from bgjobs.job import NewJob

pytestmark = pytest.mark.postgres

JOBS = 3000


def table_stats(schema: str) -> tuple[int, int]:
    """(dead rows, vacuums run by hand) of the schema's hot table."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT n_dead_tup, vacuum_count FROM pg_stat_user_tables"
            " WHERE schemaname = %s AND relname = 'bgjobs_jobs'",
            (schema,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture
def low_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vacuum, "MIN_DEAD", 1000)


@pytest.fixture
def store(pg_schema: str) -> Iterator[bgjobs.Store]:
    require_postgres()
    made = bgjobs.postgres(PG_URL, schema=pg_schema)
    made.open()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{pg_schema}".bgjobs_jobs SET (autovacuum_enabled = false)')
    yield made
    made.close()


def drain(store: bgjobs.Store, count: int) -> None:
    done = threading.Semaphore(0)
    bg = (
        bgjobs.new(store)
        .with_retention(succeeded=None)
        .with_queue(
            bgjobs.queue("q")
            .with_max_concurrent_jobs(16)
            .with_worker(bgjobs.worker("w", lambda job: done.release()))
        )
        .build()
    )
    for start in range(0, count, 1000):
        bg.enqueue_many([("w", {"i": i}) for i in range(start, min(start + 1000, count))])
    with bg:
        for _ in range(count):
            assert done.acquire(timeout=30)
        # Upkeep runs every few seconds: the dead rows of the drain are vacuumed away.
        wait_until(lambda: table_stats(store.schema)[1] > 0, 20, "bgjobs to vacuum")  # type: ignore[attr-defined]


def test_dead_rows_are_vacuumed_while_jobs_drain(
    store: bgjobs.Store, pg_schema: str, low_threshold: None
) -> None:
    drain(store, JOBS)
    wait_until(lambda: table_stats(pg_schema)[0] < vacuum.MIN_DEAD, 20, "few dead rows left")


def test_one_node_at_a_time(store: bgjobs.Store, pg_schema: str, low_threshold: None) -> None:
    store.insert_jobs([NewJob(queue="q", name="w", raw_payload="{}", max_attempts=1)] * JOBS)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{pg_schema}".bgjobs_jobs')
    wait_until(lambda: table_stats(pg_schema)[0] >= JOBS, 10, "the statistics to count them")
    with psycopg.connect(PG_URL, autocommit=True) as other_node:
        other_node.execute(
            "SELECT pg_advisory_lock(hashtextextended(%s, 0))", (lock_key(pg_schema, "vacuum"),)
        )
        store.upkeep()  # another node holds the vacuum lock: this one skips its turn
        assert table_stats(pg_schema)[1] == 0
    store.upkeep()
    assert table_stats(pg_schema)[1] == 1
    wait_until(lambda: table_stats(pg_schema)[0] < JOBS, 10, "the dead rows to be gone")


def test_the_threshold() -> None:
    assert not worth_vacuuming(live=0, dead=vacuum.MIN_DEAD - 1)
    assert worth_vacuuming(live=0, dead=vacuum.MIN_DEAD)
    big = 10 * vacuum.MIN_DEAD
    assert not worth_vacuuming(live=big / vacuum.DEAD_FRACTION, dead=big - 1)
    assert worth_vacuuming(live=big / vacuum.DEAD_FRACTION, dead=big)
