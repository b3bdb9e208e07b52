"""Cancelling running jobs in one process: how each kind of handler is stopped, what is recorded.

The multi-process versions (cancel from another process, both backends) are in
tests/test_job_control_multiprocess.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from tests.adapters.test_contract import claim
from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs import CancelOutcome, JobState
from bgjobs.adapters.base import JobFilter, Store
from bgjobs.events import JobCancelled, JobStarted, ScheduledNextRun
from bgjobs.job import NewJob
from bgjobs.runtime.queue_runner import CANCEL_GRACE


def node(store: Store, recorder: Recorder, *workers: bgjobs.WorkerSpec) -> bgjobs.BgJobs:
    queue = bgjobs.queue("q").with_max_concurrent_jobs(2)
    for worker in workers:
        queue = queue.with_worker(worker)
    return bgjobs.new(store).with_event_listener(recorder).with_queue(queue).build()


def running(store: Store, job_id: int) -> bool:
    job = store.get_job(job_id)
    return job is not None and job.state is JobState.RUNNING


def cancel_and_time(bg: bgjobs.BgJobs, store: Store, job_id: int) -> float:
    """Cancel a running job; seconds until it is archived as cancelled."""
    wait_until(lambda: running(store, job_id), 10, "the job to run")
    asked = time.monotonic()
    result = bg.cancel(job_id)
    assert result.outcome is CancelOutcome.REQUESTED and not result.stopped
    wait_until(lambda: stopped(store, job_id), 10, "the job to be archived as cancelled")
    return time.monotonic() - asked


def stopped(store: Store, job_id: int) -> bool:
    job = store.get_job(job_id)
    return job is not None and job.state is JobState.CANCELLED


def test_a_handler_that_watches_job_cancelled_stops_on_its_own(
    store: Store, started: Callable
) -> None:
    recorder = Recorder()
    returned = threading.Event()

    def patient(job: bgjobs.Job) -> None:
        while not job.cancelled:
            time.sleep(0.005)
        returned.set()

    bg = started(node(store, recorder, bgjobs.worker("patient", patient)))
    job = bg.enqueue("patient")
    took = cancel_and_time(bg, store, job.id)
    assert returned.is_set(), "it returned by itself, before the grace period ran out"
    assert took < CANCEL_GRACE + 2
    (event,) = recorder.of(JobCancelled)
    assert event.job.id == job.id and event.node_id == bg.node_id
    final = store.get_job(job.id)
    assert final is not None and final.errors[-1].type == "Cancelled"
    again = bg.cancel(job.id)
    assert again.outcome is CancelOutcome.FINISHED and again.stopped


def test_check_cancelled_raises_and_ends_the_job_cancelled(store: Store, started: Callable) -> None:
    recorder = Recorder()

    def loop(job: bgjobs.Job) -> None:
        while True:
            job.check_cancelled()
            time.sleep(0.005)

    bg = started(node(store, recorder, bgjobs.worker("loop", loop)))
    job = bg.enqueue("loop")
    cancel_and_time(bg, store, job.id)
    assert [e.job.id for e in recorder.of(JobCancelled)] == [job.id]


def test_a_blocked_sync_handler_is_interrupted_and_its_slot_comes_back(
    store: Store, started: Callable
) -> None:
    recorder = Recorder()
    done = threading.Event()

    def blocked(job: bgjobs.Job) -> None:
        time.sleep(30)  # in C: nothing reaches it until it returns

    bg = started(
        node(
            store,
            recorder,
            bgjobs.worker("blocked", blocked),
            bgjobs.worker("next", lambda j: done.set()),
        )
    )
    first = bg.enqueue("blocked")
    second = bg.enqueue("blocked")
    wait_until(lambda: running(store, first.id) and running(store, second.id), 10, "both run")
    took = cancel_and_time(bg, store, first.id)
    assert CANCEL_GRACE <= took < CANCEL_GRACE + 3, "interrupted after the grace period"
    bg.enqueue("next")
    assert done.wait(10), "the queue still has its two slots (the stuck thread was retired)"
    assert running(store, second.id)


def test_an_async_handler_is_cancelled_at_once(store: Store, started: Callable) -> None:
    recorder = Recorder()
    saw: list[str] = []

    async def waiting(job: bgjobs.Job) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            saw.append("CancelledError")
            raise

    bg = started(node(store, recorder, bgjobs.worker("waiting", waiting)))
    job = bg.enqueue("waiting")
    wait_until(lambda: recorder.of(JobStarted), 10, "the coroutine to start")
    took = cancel_and_time(bg, store, job.id)
    assert took < CANCEL_GRACE, "no grace period for coroutines"
    wait_until(lambda: saw == ["CancelledError"], 5, "the coroutine to see CancelledError")
    assert [e.job.id for e in recorder.of(JobCancelled)] == [job.id]


def test_a_handler_may_cancel_its_own_job(store: Store, started: Callable) -> None:
    recorder = Recorder()

    def give_up(job: bgjobs.Job) -> None:
        raise bgjobs.Cancelled("the order was withdrawn")

    bg = started(node(store, recorder, bgjobs.worker("give_up", give_up)))
    job = bg.enqueue("give_up")
    wait_until(lambda: stopped(store, job.id), 10, "the job to end cancelled")
    final = store.get_job(job.id)
    assert final is not None and final.attempt == 1, "no retry"
    assert final.errors[-1].message == "the order was withdrawn"
    assert [e.job.id for e in recorder.of(JobCancelled)] == [job.id]


def test_a_cancelled_scheduled_run_keeps_its_schedule_going(
    store: Store, started: Callable
) -> None:
    recorder = Recorder()
    release = threading.Event()

    def tick(job: bgjobs.Job) -> None:
        while not job.cancelled:
            release.wait(0.01)

    bg = started(
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_scheduled_job(
            bgjobs.scheduled_job(bgjobs.worker("tick", tick), bgjobs.every(seconds=1))
        )
        .build()
    )
    wait_until(lambda: store.list_jobs(JobFilter(state=JobState.RUNNING)), 10, "a run to start")
    (run,) = store.list_jobs(JobFilter(state=JobState.RUNNING))
    cancel_and_time(bg, store, run.id)
    wait_until(
        lambda: any(e.job.id != run.id for e in recorder.of(ScheduledNextRun)), 10, "a next run"
    )
    (info,) = bg.schedules()
    assert info.last_outcome == "cancelled"


def test_a_job_flagged_before_this_node_got_it_is_not_run(store: Store, started: Callable) -> None:
    """Its node stopped (released it) or died (rescued) after the cancel request: the next node
    archives it as cancelled without running the handler."""
    recorder = Recorder()
    ran: list[int] = []
    new = NewJob(queue="q", name="work", raw_payload="{}", max_attempts=3)
    job = store.insert_jobs([new])[0]
    claim(store, queue="q", node="gone")
    assert store.cancel_job(job.id).outcome is CancelOutcome.REQUESTED
    store.release("gone", [job.id])
    started(node(store, recorder, bgjobs.worker("work", lambda j: ran.append(j.id))))
    wait_until(lambda: stopped(store, job.id), 10, "the job to be archived as cancelled")
    assert ran == [] and [e.job.id for e in recorder.of(JobCancelled)] == [job.id]


def test_a_job_that_finishes_first_keeps_its_outcome(store: Store, started: Callable) -> None:
    recorder = Recorder()
    bg = started(node(store, recorder, bgjobs.worker("quick", lambda j: None)))
    job = bg.enqueue("quick")
    wait_until(
        lambda: (found := store.get_job(job.id)) is not None and found.state.is_finished,
        10,
        "the job to finish",
    )
    result = bg.cancel(job.id)
    assert result.outcome is CancelOutcome.FINISHED and not result.stopped
    assert result.job is not None and result.job.state is JobState.SUCCEEDED
    assert recorder.of(JobCancelled) == []
