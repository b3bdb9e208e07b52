"""A job that kills its node, claimed in one batch with healthy jobs, on nodes that a process
manager restarts: the pill ends failed after its attempts, and the healthy jobs, rescued with it,
are never charged for its crashes."""

from __future__ import annotations

import threading
import time

import pytest
from tests.conftest import wait_until
from tests.reliability.nodes import fleet
from tests.reliability.raw import execute
from tests.support import results

import bgjobs
from bgjobs.adapters.base import Store

MAX_ATTEMPTS = 3


@pytest.mark.slow
def test_a_poison_pill_fails_alone_and_its_batch_mates_succeed(database_url: str) -> None:
    results.setup(database_url)
    bg = (
        bgjobs.new(bgjobs.open_store(database_url))
        .with_queue(
            bgjobs.queue("work").with_worker(
                bgjobs.worker("work", lambda job: None).with_max_attempts(MAX_ATTEMPTS)
            )
        )
        .build()
    )
    # The healthy jobs outlive the pill's sleep, so every crash catches them mid-run.
    healthy = bg.enqueue_many([("work", {"sleep": 1.0}) for _ in range(4)])
    (pill,) = bg.enqueue_many([("work", {"sleep": 0.3, "pill": True})])
    ids = [job.id for job in healthy]

    def settled() -> bool:
        stored = [bg.store.get_job(job_id) for job_id in [*ids, pill.id]]
        return all(job is not None and job.state.is_finished for job in stored)

    # A short lease, so that bgjobs without liveness locks also gets through this in time.
    args = ("--heartbeat", "0.3", "--node-timeout", "1.5")
    deadline = time.monotonic() + 150
    with fleet(database_url, "work", 2, *args) as nodes:
        while not settled():
            assert time.monotonic() < deadline, "jobs still unsettled after 150 s"
            nodes.revive()
            time.sleep(0.05)
    for job_id in ids:
        stored = bg.store.get_job(job_id)
        assert stored is not None
        assert stored.state is bgjobs.JobState.SUCCEEDED, (stored.state, stored.errors)
    done = {job_id for job_id, _, _ in results.rows(database_url, "done")}
    assert set(ids) <= done, "every healthy handler ran to its end"
    failed = bg.store.get_job(pill.id)
    assert failed is not None and failed.state is bgjobs.JobState.FAILED
    assert failed.attempt == MAX_ATTEMPTS
    charged = [e for e in failed.errors if e.type == "JobRescued" and "alone" in e.message]
    assert len(charged) == MAX_ATTEMPTS, [e.message for e in failed.errors]


def test_a_suspect_runs_alone_on_its_node(store: Store, database_url: str) -> None:
    """Nothing else runs on the node, in any queue, while a suspect runs; the rest runs
    side by side as usual."""
    spans: list[tuple[int, float, float]] = []
    lock = threading.Lock()

    def work(job: bgjobs.Job) -> None:
        started = time.monotonic()
        time.sleep(0.2)
        with lock:
            spans.append((job.id, started, time.monotonic()))

    bg = (
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("a").with_max_concurrent_jobs(4).with_worker(bgjobs.worker("wa", work))
        )
        .with_queue(
            bgjobs.queue("b").with_max_concurrent_jobs(4).with_worker(bgjobs.worker("wb", work))
        )
        .build()
    )
    store.open()
    jobs = bg.enqueue_many([("wa", None)] * 5 + [("wb", None)] * 4)
    suspects = {jobs[1].id, jobs[3].id}
    for job_id in suspects:
        execute(database_url, "UPDATE bgjobs_jobs SET rescues = 2 WHERE id = ?", job_id)
    with bg:
        wait_until(lambda: len(spans) == len(jobs), 30, "all ran")
    for job_id, start, end in spans:
        overlapping = [other for other, s, e in spans if other != job_id and s < end and e > start]
        if job_id in suspects:
            assert overlapping == [], f"suspect {job_id} ran beside {overlapping}"
    assert max(len([1 for _, s, e in spans if s <= start < e]) for _, start, _ in spans) > 1
