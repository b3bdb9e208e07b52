"""Fault injection with real processes: SIGKILL, SIGTERM, many writers on one SQLite file."""

from __future__ import annotations

import signal

import pytest
from tests.conftest import wait_until
from tests.support import results
from tests.support.procs import nodes, producer, start_node, stop_node

import bgjobs
from bgjobs.adapters.base import JobFilter

pytestmark = pytest.mark.slow


def running(bg: bgjobs.BgJobs) -> list[bgjobs.Job]:
    return bg.store.list_jobs(JobFilter(state=bgjobs.JobState.RUNNING, limit=1000))


def test_sigkill_with_50_jobs_in_flight_loses_nothing(database_url: str) -> None:
    """Scenario 1: a node dies mid-flight; after its lease the jobs run elsewhere, once."""
    results.setup(database_url)
    bg = producer(database_url)
    jobs = bg.enqueue_many([("work", {"n": n}) for n in range(80)])
    fast = ("--heartbeat", "0.3", "--node-timeout", "1.5")
    victim = start_node(database_url, "slow", "--sleep", "30", "--concurrency", "50", *fast)
    wait_until(lambda: len(running(bg)) == 50, 15, "50 jobs in flight")
    in_flight = {job.id for job in running(bg)}
    stop_node(victim, signal.SIGKILL)
    with nodes(database_url, "drain", 1, "--concurrency", "20", *fast):
        wait_until(lambda: len(results.rows(database_url, "drain")) >= 80, 30, "all 80 ran")
    ran = [row[0] for row in results.rows(database_url, "drain")]
    assert sorted(ran) == sorted(job.id for job in jobs), "every job ran exactly once after"
    for job in jobs:
        stored = bg.store.get_job(job.id)
        assert stored is not None and stored.state is bgjobs.JobState.SUCCEEDED
        rescued = [e for e in stored.errors if e.type == "JobRescued"]
        assert (len(rescued) == 1) == (job.id in in_flight), "re-runs only for the in-flight set"


def test_sigterm_lets_in_flight_jobs_finish_and_leaves_the_rest(database_url: str) -> None:
    """Scenario 3: graceful shutdown during a drain of slow jobs exits 0 and loses nothing."""
    results.setup(database_url)
    bg = producer(database_url)
    bg.enqueue_many([("work", {"n": n}) for n in range(20)])
    proc = start_node(database_url, "slow", "--sleep", "1", "--concurrency", "4")
    wait_until(lambda: len(running(bg)) == 4, 15, "4 jobs in flight")
    in_flight = {job.id for job in running(bg)}
    assert stop_node(proc, signal.SIGTERM) == 0
    done = {row[0] for row in results.rows(database_url, "slow")}
    assert in_flight <= done, "in-flight jobs finished within the grace period"
    waiting = bg.store.list_jobs(JobFilter(state=bgjobs.JobState.AVAILABLE, limit=100))
    assert len(waiting) == 20 - len(done) and all(j.attempt == 0 for j in waiting)
    assert running(bg) == []


def test_sigterm_past_the_grace_period_releases_unfinished_jobs(database_url: str) -> None:
    results.setup(database_url)
    bg = producer(database_url)
    bg.enqueue_many([("work", {"n": n}) for n in range(3)])
    proc = start_node(database_url, "slow", "--sleep", "30", "--concurrency", "3", "--grace", "0.3")
    wait_until(lambda: len(running(bg)) == 3, 15, "3 jobs in flight")
    assert stop_node(proc, signal.SIGTERM, timeout=15) == 0
    waiting = bg.store.list_jobs(JobFilter(state=bgjobs.JobState.AVAILABLE))
    assert len(waiting) == 3 and all(j.attempt == 0 for j in waiting), "released, not lost"


def test_four_processes_enqueue_and_drain_one_sqlite_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Scenario 5: concurrent writers never see "database is locked"; counts add up."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    results.setup(url)
    producer(url).store.open()
    with nodes(url, "mixed", 4, "--enqueue", "300") as procs:
        wait_until(lambda: len(results.rows(url, "mixed")) >= 1200, 90, "1200 jobs ran")
        outputs = []
        for proc in procs:
            stop_node(proc)
            assert proc.stderr is not None
            outputs.append(proc.stderr.read())
    ids = [row[0] for row in results.rows(url, "mixed")]
    assert len(ids) == 1200 and len(set(ids)) == 1200
    assert all(proc.returncode == 0 for proc in procs)
    assert not any("locked" in out for out in outputs), outputs
