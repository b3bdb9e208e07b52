"""Job control across real OS processes, on SQLite and Postgres.

- Unique keys under a race: 8 threads in each of 2 processes enqueue the same keys at once, and
  each key gets exactly one job.
- Cancelling running jobs from another process (the library and the CLI): a sync handler that
  watches ``job.cancelled``, a sync handler blocked in C and an async handler all end cancelled,
  with JobCancelled emitted by the node that ran them. The latencies are printed (pytest -s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from tests.conftest import wait_until
from tests.support import results
from tests.support.procs import ROOT, nodes, producer, start_ready

from bgjobs import CancelOutcome, JobState
from bgjobs.adapters.base import JobFilter, Store
from bgjobs.job import NewJob

pytestmark = pytest.mark.slow

THREADS = 8
KEYS = 40


def start_racer(url: str) -> subprocess.Popen[str]:
    args = ("--threads", str(THREADS), "--keys", str(KEYS))
    return start_ready("tests.support.enqueue_race", url, *args, stdin=True)


def test_two_processes_of_eight_threads_create_one_job_per_unique_key(database_url: str) -> None:
    store = producer(database_url).store
    store.open()  # migrated once, before the racers start
    racers = [start_racer(database_url), start_racer(database_url)]
    for proc in racers:  # both ready: release them together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    calls: list[tuple[int, int, bool]] = []
    for proc in racers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        calls += [tuple(call) for call in json.loads(out)]
    assert len(calls) == 2 * THREADS * KEYS
    by_key: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for key, job_id, duplicate in calls:
        by_key[key].append((job_id, duplicate))
    for key, got in by_key.items():
        assert len({job_id for job_id, _ in got}) == 1, f"key {key}: one job for all 16 callers"
        assert [dup for _, dup in got].count(False) == 1, f"key {key}: exactly one inserted it"
    stored = store.list_jobs(JobFilter(limit=10 * KEYS))
    store.close()
    assert sorted(job.payload["k"] for job in stored) == list(range(KEYS))  # type: ignore[index,call-overload]


def cli_cancel(url: str, job_id: int) -> tuple[subprocess.Popen[str], float]:
    """`bgjobs jobs cancel ID --wait 20` in its own process; when it reported the request."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bgjobs.cli.main", "jobs", "cancel", str(job_id), "--wait", "20"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), BGJOBS_DATABASE_URL=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(f"cancel requested for coop#{job_id}"), line
    return proc, time.time()


WORKERS = ("coop", "blocking", "async", "coop")  # the second coop job is cancelled by the CLI


def test_running_jobs_are_cancelled_from_another_process(backend: str, database_url: str) -> None:
    results.setup(database_url)
    bg = producer(database_url)
    store = bg.store
    with nodes(database_url, "cancel", 1, "--poll", "5") as (proc,):
        ids = [store.insert_jobs([new_job(name)])[0].id for name in WORKERS]
        wait_until(lambda: len(results.rows(database_url, "started")) == len(ids), 30, "all run")
        latencies: dict[str, float] = {}
        for index, (name, job_id) in enumerate(zip(WORKERS, ids, strict=True)):
            if index == 3:
                cli, asked = cli_cancel(database_url, job_id)
                out, err = cli.communicate(timeout=60)
                assert cli.returncode == 0, err
                assert out.strip() == f"cancelled coop#{job_id}"
                name = "coop via the CLI"
            else:
                asked = time.time()
                assert bg.cancel(job_id).outcome is CancelOutcome.REQUESTED
            wait_until(lambda job_id=job_id: cancelled(store, job_id), 20, f"{name} cancelled")
            wait_until(lambda job_id=job_id: event_of(database_url, job_id), 20, f"{name}'s event")
            (event,) = event_of(database_url, job_id)
            assert event[2] == f"pid{proc.pid}", "JobCancelled came from the node that ran it"
            latencies[name] = event[1] / 1e6 - asked
    store.close()
    print(
        f"\n{backend} cancel latency (request committed -> JobCancelled on the node): "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in latencies.items())
    )
    assert all(seconds < 10 for seconds in latencies.values()), latencies


def new_job(name: str) -> NewJob:
    return NewJob(queue="work", name=name, raw_payload="{}", max_attempts=1)


def cancelled(store: Store, job_id: int) -> bool:
    job = store.get_job(job_id)
    return job is not None and job.state is JobState.CANCELLED


def event_of(url: str, job_id: int) -> list[tuple[int, int, str]]:
    """The JobCancelled events the node recorded for ``job_id`` (its listener writes them just
    after the job's archive row is committed)."""
    return [row for row in results.rows(url, "cancelled") if row[0] == job_id]
