"""Recovery in seconds: a dead node is seen through the liveness lock the OS (SQLite: flock) or
the server (Postgres: a session advisory lock) drops with its process, not after its lease.

All with bgjobs' default heartbeat settings (5 s heartbeat, 30 s lease), unless said otherwise.
"""

from __future__ import annotations

import signal
import time

import pytest
from tests.conftest import wait_until
from tests.reliability.nodes import node_name, start, stopped
from tests.support import results
from tests.support.procs import producer, stop_node

import bgjobs
from bgjobs.adapters.base import JobFilter

pytestmark = pytest.mark.slow


def started_by(url: str, node: str) -> set[int]:
    return {job_id for job_id, _, who in results.rows(url, "start") if who == node}


def test_a_sigkilled_nodes_jobs_run_again_elsewhere_within_seconds(database_url: str) -> None:
    results.setup(database_url)
    bg = producer(database_url)
    jobs = bg.enqueue_many([("work", {"sleep": 2}) for _ in range(10)])
    victim = start(database_url, "work")
    wait_until(lambda: len(started_by(database_url, node_name(victim))) == 10, 30, "10 in flight")
    survivor = start(database_url, "work")
    try:
        killed = time.monotonic()
        stop_node(victim, signal.SIGKILL)
        wait_until(
            lambda: len(started_by(database_url, node_name(survivor))) == 10, 60, "all restarted"
        )
        restarted = time.monotonic() - killed
        wait_until(lambda: len(results.rows(database_url, "done")) >= 10, 30, "all finished")
    finally:
        stop_node(survivor)
    assert restarted < 10, f"the dead node's jobs took {restarted:.1f}s to start again"
    done = sorted(job_id for job_id, _, _ in results.rows(database_url, "done"))
    assert done == sorted(job.id for job in jobs), "each job finished exactly once"
    for job in jobs:
        stored = bg.store.get_job(job.id)
        assert stored is not None and stored.state is bgjobs.JobState.SUCCEEDED
        (rescue,) = [e for e in stored.errors if e.type == "JobRescued"]
        assert "died" in rescue.message, rescue.message


def test_a_hung_node_keeps_its_jobs_until_its_lease_runs_out(database_url: str) -> None:
    """SIGSTOP: the process is alive and holds its liveness lock, so only the lease frees its
    jobs; they must not be taken from it before that."""
    results.setup(database_url)
    bg = producer(database_url)
    bg.enqueue_many([("work", {"sleep": 30}) for _ in range(3)])
    short_lease = ("--heartbeat", "0.5", "--node-timeout", "4")
    victim = start(database_url, "work", *short_lease)
    wait_until(lambda: len(started_by(database_url, node_name(victim))) == 3, 30, "3 in flight")
    survivor = start(database_url, "work", *short_lease)
    try:
        with stopped(victim):
            hung = time.monotonic()
            wait_until(
                lambda: len(started_by(database_url, node_name(survivor))) == 3, 60, "rescued"
            )
            waited = time.monotonic() - hung
    finally:
        stop_node(survivor, signal.SIGKILL)
    assert waited >= 3.0, f"a live (stopped) node lost its jobs after {waited:.1f}s"
    rescued = bg.store.list_jobs(JobFilter(state=bgjobs.JobState.RUNNING))
    rescued += bg.store.list_jobs(JobFilter(state=bgjobs.JobState.AVAILABLE))
    for job in rescued:
        (rescue,) = [e for e in job.errors if e.type == "JobRescued"]
        assert "lease" in rescue.message, rescue.message


@pytest.mark.parametrize("missed", ["coalesce", "skip"])
def test_a_node_restarted_after_sigkill_applies_the_missed_run_policy(
    database_url: str, missed: str
) -> None:
    """Issue 15: restarted within the node timeout, the node took its own dead predecessor for a
    live peer and skipped the missed-run policy (coalesce ran two catch-up runs, skip ran a
    missed occurrence). Every-second ticks, down for about 4 s."""
    results.setup(database_url)
    first = start(database_url, "tick", "--missed", missed)
    wait_until(lambda: len(results.rows(database_url, "tick")) >= 2, 30, "two ticks")
    stop_node(first, signal.SIGKILL)
    before = {due for _, due, _ in results.rows(database_url, "tick")}
    # A run caught mid-flight by the kill is rescued and runs again (at-least-once): allowed.
    store = bgjobs.open_store(database_url)
    running = store.list_jobs(JobFilter(state=bgjobs.JobState.RUNNING))
    before |= {int(job.scheduled_at.timestamp() * 1_000_000) for job in running}
    store.close()
    time.sleep(4)  # the downtime itself: occurrences are missed while no node runs
    restarted_us = int(time.time() * 1_000_000)
    second = start(database_url, "tick", "--missed", missed)
    try:
        wait_until(
            lambda: len(results.rows(database_url, "tick")) >= len(before) + 3, 30, "ticks again"
        )
    finally:
        stop_node(second)
    after = sorted(
        due for _, due, node in results.rows(database_url, "tick") if node == node_name(second)
    )
    assert len(after) == len(set(after)), "an occurrence ran twice"
    # Coalesce runs what was missed as one run, due at the latest missed occurrence (within a
    # second before the restart registered it); skip runs nothing that was due before.
    oldest_allowed = restarted_us - (1_500_000 if missed == "coalesce" else 0)
    stale = [due for due in after if due < oldest_allowed and due not in before]
    assert stale == [], f"{missed}: ran missed occurrences {stale} (restart at {restarted_us})"
    if missed == "coalesce":
        catch_up = [due for due in after if due < restarted_us and due not in before]
        assert len(catch_up) <= 1, f"coalesce ran {len(catch_up)} catch-up runs: {catch_up}"
