"""Scenario 2: Postgres connections killed mid-drain (pg_terminate_backend)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from tests.conftest import PG_URL, Recorder, require_postgres, wait_until

import bgjobs
from bgjobs.adapters.base import JobFilter
from bgjobs.events import QueueError

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def terminate_backends(application_name: str) -> int:
    """Kill this test's connections only (other suites may share the server)."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_killed_connections_mid_drain_lose_nothing(pg_schema: str) -> None:
    require_postgres()
    runs: Counter[int] = Counter()
    lock = threading.Lock()

    def work(job: bgjobs.Job) -> None:
        time.sleep(0.002)
        with lock:
            runs[job.id] += 1

    recorder = Recorder()
    application_name = f"bgjobs_faults_{pg_schema}"
    sep = "&" if "?" in PG_URL else "?"
    store = bgjobs.postgres(f"{PG_URL}{sep}application_name={application_name}", schema=pg_schema)
    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(
            bgjobs.queue("q").with_max_concurrent_jobs(10).with_worker(bgjobs.worker("w", work))
        )
        .build()
    )
    jobs = bg.enqueue_many([("w", {"n": n}) for n in range(1500)])
    with bg:
        for kill in range(1, 4):
            target = 200 * kill
            wait_until(lambda t=target: len(runs) >= t, 30, "progress between kills")
            # Between two pool checkouts every connection may be mid-replacement: try again
            # until one is there to kill.
            wait_until(lambda: terminate_backends(application_name) > 0, 10, "a backend to kill")
        wait_until(lambda: len(runs) == 1500, 60, "every job to run")
        wait_until(
            lambda: (
                len(store.list_jobs(JobFilter(state=bgjobs.JobState.SUCCEEDED, limit=2000))) == 1500
            ),
            60,
            "every job archived as succeeded",
        )
    assert {job.id for job in jobs} == set(runs)
    assert store.list_jobs(JobFilter(state=bgjobs.JobState.RUNNING)) == []
    assert store.list_jobs(JobFilter(state=bgjobs.JobState.AVAILABLE)) == []
    assert recorder.of(QueueError), "the outage was reported, not hidden"
    duplicates = sum(count - 1 for count in runs.values())
    assert duplicates <= 30, f"re-runs stay limited to jobs in flight at a kill ({duplicates})"
    store.close()
