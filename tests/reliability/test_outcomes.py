"""Whatever a stored row or a handler's answer holds, each claimed job ends with a recorded
outcome: nothing between the claim and the completion may leave it running for ever."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Recorder, wait_until
from tests.reliability.raw import execute

import bgjobs
from bgjobs.adapters.base import JobFilter, Store
from bgjobs.events import JobDiscarded, JobFailed

DEEP = "[" * 5000 + "]" * 5000


def state_of(store: Store, job_id: int) -> bgjobs.JobState | None:
    job = store.get_job(job_id)
    return job.state if job else None


def runtime(store: Store, worker: bgjobs.WorkerSpec, recorder: Recorder) -> bgjobs.BgJobs:
    return (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(bgjobs.queue("q").with_worker(worker))
        .build()
    )


def test_a_scheduled_run_whose_next_run_cannot_be_computed_is_discarded(
    store: Store, database_url: str, backend: str
) -> None:
    """A stored due time at the end of the calendar: the next run overflows datetime once the
    handler returned. That escaped the runner: the run stayed reserved for ever."""
    recorder = Recorder()
    hourly = bgjobs.scheduled_job(bgjobs.worker("tick", lambda job: None), bgjobs.every(hours=1))
    bg = bgjobs.new(store).with_event_listener(recorder).with_scheduled_job(hourly).build()
    bg.start()
    bg.stop()
    (pending,) = store.list_jobs(JobFilter(name="tick"))
    # Due now, and in retry backoff (attempt 1), so that registration keeps it as it is.
    end, due = (
        (253402300799000000, 0)
        if backend == "sqlite"
        else ("9999-12-31 23:59:59+00", "2000-01-01 00:00:00+00")
    )
    execute(
        database_url,
        "UPDATE bgjobs_jobs SET scheduled_at = ?, available_at = ?, attempt = 1, max_attempts = 3",
        end,
        due,
    )
    again = bgjobs.new(store).with_event_listener(recorder).with_scheduled_job(hourly).build()
    with again:
        wait_until(lambda: state_of(store, pending.id) is bgjobs.JobState.DISCARDED, 10)
    done = store.get_job(pending.id)
    assert done is not None
    assert "next run" in done.errors[-1].message and "OverflowError" in done.errors[-1].message
    assert any(e.job.id == pending.id for e in recorder.of(JobDiscarded))


def test_a_row_with_an_unreadable_error_history_still_runs(store: Store, database_url: str) -> None:
    """Nested deeper than json can read: the claim itself failed, for every job of the queue."""
    recorder = Recorder()
    bg = runtime(store, bgjobs.worker("w", lambda job: None), recorder)
    store.open()
    damaged = bg.enqueue("w")
    execute(database_url, "UPDATE bgjobs_jobs SET errors = ? WHERE id = ?", DEEP, damaged.id)
    healthy = bg.enqueue("w")
    with bg:
        wait_until(lambda: state_of(store, healthy.id) is bgjobs.JobState.SUCCEEDED, 10)
        wait_until(lambda: state_of(store, damaged.id) is bgjobs.JobState.SUCCEEDED, 10)


def test_a_snooze_too_long_to_store_fails_that_attempt_with_a_clear_error(store: Store) -> None:
    recorder = Recorder()

    def sleepy(job: bgjobs.Job) -> None:
        if job.attempt == 1:
            job.snooze(timedelta(days=3_000_000))

    worker = bgjobs.worker("sleepy", sleepy).with_backoff(bgjobs.constant(timedelta(0)))
    bg = runtime(store, worker, recorder)
    with bg:
        job = bg.enqueue("sleepy")
        others = [bg.enqueue("sleepy") for _ in range(3)]
        for each in (job, *others):
            wait_until(lambda e=each: state_of(store, e.id) is bgjobs.JobState.SUCCEEDED, 10)
    done = store.get_job(job.id)
    assert done is not None and done.attempt == 2
    (error,) = done.errors
    assert error.type == "UnstorableDelay", error
    assert "snooze" in error.message and "latest time bgjobs can store" in error.message
    assert any(e.job.id == job.id for e in recorder.of(JobFailed))


def test_a_retry_delay_too_long_to_store_discards_the_job_with_a_clear_error(
    store: Store,
) -> None:
    recorder = Recorder()

    def broken(job: bgjobs.Job) -> None:
        raise ValueError("boom")

    endless = bgjobs.constant(timedelta(days=3_000_000))
    bg = runtime(store, bgjobs.worker("broken", broken).with_backoff(endless), recorder)
    with bg:
        job = bg.enqueue("broken")
        ok = bg.enqueue("broken")
        for each in (job, ok):
            wait_until(lambda e=each: state_of(store, e.id) is bgjobs.JobState.DISCARDED, 10)
    done = store.get_job(job.id)
    assert done is not None
    (error,) = done.errors
    assert error.type == "UnstorableDelay", error
    assert "ValueError: boom" in error.message and "backoff" in error.message
