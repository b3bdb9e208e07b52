"""Rolling deploys: nodes running old and new code share a queue (real OS processes, both
backends). A node claims only the jobs it has a worker for; a job no live node can run waits,
visibly, and fails with a clear error once its worker has been missing for the timeout."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tests.cli.conftest import invoke_cli
from tests.conftest import wait_until
from tests.support import results
from tests.support.procs import start_node, stop_node

import bgjobs
from bgjobs.adapters.base import JobFilter
from bgjobs.job import Job, JobState

pytestmark = pytest.mark.slow
FAST = ("--heartbeat", "0.2", "--node-timeout", "1", "--poll", "0.05")


def producer(url: str) -> bgjobs.BgJobs:
    """The new code's producer: it knows workers a and b (it is never started)."""
    return (
        bgjobs.new(bgjobs.open_store(url))
        .with_queue(
            bgjobs.queue("work").with_workers(
                [bgjobs.worker("a", lambda j: None), bgjobs.worker("b", lambda j: None)]
            )
        )
        .build()
    )


def finished(bg: bgjobs.BgJobs, state: JobState) -> list[Job]:
    return bg.store.list_jobs(JobFilter(state=state, limit=10_000))


def test_new_kinds_of_jobs_run_on_the_new_node_and_none_is_discarded(database_url: str) -> None:
    results.setup(database_url)
    bg = producer(database_url)
    old = start_node(database_url, "deploy", "--workers", "a", *FAST)
    try:
        new = start_node(database_url, "deploy", "--workers", "a,b", *FAST)
        try:
            bg.enqueue_many([("b", {"n": n}) for n in range(100)] + [("a", {}) for _ in range(20)])

            def all_finished() -> bool:
                done = finished(bg, JobState.SUCCEEDED) + finished(bg, JobState.DISCARDED)
                return len(done) >= 120

            wait_until(all_finished, 120, "all 120 jobs to finish")
        finally:
            assert stop_node(new) == 0
    finally:
        assert stop_node(old) == 0
    discarded = finished(bg, JobState.DISCARDED)
    assert discarded == [], f"{len(discarded)} jobs discarded: {discarded[0].errors[-1]}"
    runs = results.rows(database_url, "b")
    assert len(runs) == 100 and len({job_id for job_id, _, _ in runs}) == 100
    assert {node for _, _, node in runs} == {f"pid{new.pid}"}, "only the new node runs b"
    bg.store.close()


def test_a_job_no_live_node_can_run_waits_visibly_then_fails_with_a_clear_error(
    database_url: str,
) -> None:
    timeout = 4.0
    results.setup(database_url)
    bg = producer(database_url)
    old = start_node(
        database_url,
        "deploy",
        "--workers",
        "a",
        *FAST,
        "--unknown-worker-timeout",
        str(timeout),
    )
    try:
        waiting = bg.enqueue_many([("b", {"n": n}) for n in range(5)])
        bg.enqueue("a")
        # Visible at once: the registry says no live node runs b, whatever the node has noticed.
        status = invoke_cli("status", "--json", env={"BGJOBS_DATABASE_URL": database_url})
        assert status.exit_code == 0, status.output
        unserved = json.loads(status.stdout)["waiting_for_worker"]
        assert [(w["queue"], w["name"], w["jobs"]) for w in unserved] == [("work", "b", 5)]
        wait_until(lambda: results.rows(database_url, "a"), 60, "the old node to run a")
        wait_until(
            lambda: len(finished(bg, JobState.DISCARDED)) == 5, 60 + timeout, "b jobs to fail"
        )
    finally:
        assert stop_node(old) == 0
    assert results.rows(database_url, "b") == []
    for job in finished(bg, JobState.DISCARDED):
        assert job.id in {j.id for j in waiting} and job.finished_at is not None
        assert job.finished_at - job.created_at >= timedelta(seconds=timeout), "it waited first"
        error = job.errors[-1]
        assert error.type == "UnknownWorker" and error.attempt == 0
        assert "no live node has a worker named 'b' for queue 'work'" in error.message
        assert "live nodes run: work: a" in error.message
    bg.store.close()
