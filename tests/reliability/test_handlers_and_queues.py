"""In-process fault injection: timeouts, odd handlers, poison rows, blocking queues."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs.adapters.base import Store
from bgjobs.events import JobDiscarded, JobSnoozed, JobTimedOut, NoLiveWorker
from bgjobs.job import NewJob

FAST = bgjobs.constant(timedelta(milliseconds=10))


def job_state(store: Store, job_id: int) -> bgjobs.JobState | None:
    job = store.get_job(job_id)
    return job.state if job else None


def test_timeout_fails_the_attempt_frees_the_slot_and_retries(store: Store) -> None:
    """Scenario 4, with a handler stuck in C code (time.sleep) on its first attempt."""
    recorder = Recorder()

    def stuck_once(job: bgjobs.Job) -> None:
        if job.attempt == 1:
            time.sleep(8)

    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(
            bgjobs.queue("q")
            .with_max_concurrent_jobs(1)
            .with_worker(bgjobs.worker("stuck", stuck_once).with_timeout(0.3).with_backoff(FAST))
        )
        .build()
    )
    started = time.monotonic()
    with bg:
        job = bg.enqueue("stuck")
        wait_until(lambda: job_state(store, job.id) is bgjobs.JobState.SUCCEEDED, 7.5)
    # The stuck call sleeps 8 s: succeeding before that means its slot was freed, not waited for.
    assert time.monotonic() - started < 7.5, "the slot was freed before the stuck call returned"
    assert recorder.of(JobTimedOut)
    done = store.get_job(job.id)
    assert done is not None and done.attempt == 2
    assert done.errors[0].type == "JobTimeout" and "0:00:00.300000" in done.errors[0].message


def test_timeout_interrupts_python_code_in_the_handler_thread(store: Store) -> None:
    progress = {"count": 0, "interrupted": False}

    def spin(job: bgjobs.Job) -> None:
        try:
            while True:
                progress["count"] += 1
        except BaseException:
            progress["interrupted"] = True
            raise

    bg = (
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("q").with_worker(
                bgjobs.worker("spin", spin).with_timeout(0.2).with_max_attempts(1)
            )
        )
        .build()
    )
    with bg:
        job = bg.enqueue("spin")
        wait_until(lambda: job_state(store, job.id) is bgjobs.JobState.FAILED, 5)
        wait_until(lambda: progress["interrupted"], 5, "the busy loop to be interrupted")


def test_touch_extends_the_timeout(store: Store) -> None:
    def long_but_alive(job: bgjobs.Job) -> None:
        for _ in range(6):
            time.sleep(0.1)
            job.touch()

    bg = (
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("q").with_worker(
                bgjobs.worker("alive", long_but_alive).with_timeout(0.25).with_max_attempts(1)
            )
        )
        .build()
    )
    with bg:
        job = bg.enqueue("alive")
        wait_until(
            lambda: job_state(store, job.id) is not None and job_state(store, job.id).is_finished, 5
        )  # type: ignore[union-attr]
    assert job_state(store, job.id) is bgjobs.JobState.SUCCEEDED


def test_async_timeout_cancels_the_coroutine(store: Store) -> None:
    import asyncio

    cancelled = threading.Event()

    async def sleepy(job: bgjobs.Job) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    bg = (
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("q").with_worker(
                bgjobs.worker("sleepy", sleepy).with_timeout(0.2).with_max_attempts(1)
            )
        )
        .build()
    )
    with bg:
        job = bg.enqueue("sleepy")
        wait_until(lambda: job_state(store, job.id) is bgjobs.JobState.FAILED, 5)
        assert cancelled.wait(5)


def test_snooze_and_discard_from_a_handler(store: Store) -> None:
    recorder = Recorder()
    seen: list[int] = []

    def snoozer(job: bgjobs.Job) -> None:
        seen.append(job.attempt)
        if len(seen) < 3:
            job.snooze(timedelta(milliseconds=20))

    def discarder(job: bgjobs.Job) -> None:
        raise bgjobs.Discard("account deleted; nothing to do")

    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(
            bgjobs.queue("q")
            .with_worker(bgjobs.worker("snoozer", snoozer).with_max_attempts(1))
            .with_worker(bgjobs.worker("discarder", discarder))
        )
        .build()
    )
    with bg:
        a = bg.enqueue("snoozer")
        b = bg.enqueue("discarder")
        wait_until(lambda: job_state(store, a.id) is bgjobs.JobState.SUCCEEDED, 5)
        wait_until(lambda: job_state(store, b.id) is bgjobs.JobState.DISCARDED, 5)
    assert seen == [1, 1, 1], "snoozing never spends an attempt"
    assert len(recorder.of(JobSnoozed)) == 2
    discarded = store.get_job(b.id)
    assert discarded is not None and discarded.attempt == 1, "no retries after discard"
    assert discarded.errors[-1].message == "account deleted; nothing to do"


class Fatal(BaseException):
    pass


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(lambda j: (_ for _ in ()).throw(SystemExit(3)), id="SystemExit"),
        pytest.param(lambda j: (_ for _ in ()).throw(KeyboardInterrupt()), id="KeyboardInterrupt"),
        pytest.param(lambda j: (_ for _ in ()).throw(Fatal("custom")), id="BaseException"),
    ],
)
def test_base_exceptions_fail_the_job_not_the_queue(
    store: Store, handler: Callable[[bgjobs.Job], None]
) -> None:
    """Scenario 6: BaseException-derived errors, raising listeners, odd return values."""

    def raising_listener(event: bgjobs.Event) -> None:
        raise RuntimeError("listener bug")

    bg = (
        bgjobs.new(store)
        .with_event_listener(raising_listener)
        .with_queue(
            bgjobs.queue("q")
            .with_max_concurrent_jobs(1)
            .with_worker(bgjobs.worker("bad", handler).with_max_attempts(1))
            .with_worker(bgjobs.worker("weird", lambda j: object()))
        )
        .build()
    )
    with bg:
        bad = bg.enqueue("bad")
        weird = bg.enqueue("weird")
        wait_until(lambda: job_state(store, bad.id) is bgjobs.JobState.FAILED, 5)
        wait_until(lambda: job_state(store, weird.id) is bgjobs.JobState.SUCCEEDED, 5)
        after = bg.enqueue("weird")
        wait_until(lambda: job_state(store, after.id) is bgjobs.JobState.SUCCEEDED, 5)


def test_poison_rows_are_discarded_with_a_clear_error(store: Store) -> None:
    """A corrupt payload is discarded at once; a job whose worker no live node has waits for one
    (a rolling deploy), then is discarded after the unknown-worker timeout."""
    recorder = Recorder()
    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_heartbeat(0.2, 1.0)
        .with_unknown_worker_timeout(1.0)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("ok", lambda j: j.payload)))
        .build()
    )
    store.open()
    gone, corrupt = store.insert_jobs(
        [
            NewJob(queue="q", name="removed_worker", raw_payload="{}", max_attempts=5),
            NewJob(queue="q", name="ok", raw_payload="{not json", max_attempts=5),
        ]
    )
    with bg:
        wait_until(lambda: len(recorder.of(JobDiscarded)) == 2, 30)
        healthy = bg.enqueue("ok", {"fine": True})
        wait_until(lambda: job_state(store, healthy.id) is bgjobs.JobState.SUCCEEDED, 10)
    events = recorder.events
    (noticed,) = [i for i, e in enumerate(events) if isinstance(e, NoLiveWorker)]
    (dropped,) = [
        i for i, e in enumerate(events) if isinstance(e, JobDiscarded) and e.job.id == gone.id
    ]
    assert noticed < dropped, "noticed once, then discarded"
    unknown = store.get_job(gone.id)
    assert unknown is not None and unknown.state is bgjobs.JobState.DISCARDED
    assert unknown.finished_at is not None
    assert unknown.finished_at - unknown.created_at >= timedelta(seconds=1), "it waited first"
    assert "no live node has a worker named 'removed_worker'" in unknown.errors[-1].message
    bad = store.get_job(corrupt.id)
    assert bad is not None and bad.state is bgjobs.JobState.DISCARDED
    assert bad.errors[-1].type == "PayloadError"


def test_blocking_queue_keeps_fifo_order_across_two_nodes(
    store_factory: Callable[..., Store],
) -> None:
    """Scenario 7: the failing head blocks; nothing overtakes it; never two at once."""
    intervals: list[tuple[int, float, float]] = []
    lock = threading.Lock()
    failures = {"left": 2}
    active = {"now": 0, "peak": 0}

    def step(job: bgjobs.Job) -> None:
        with lock:
            active["now"] += 1
            active["peak"] = max(active["peak"], active["now"])
        start = time.monotonic()
        time.sleep(0.01)
        try:
            if job.payload == 0 and failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError("head fails")
        finally:
            with lock:
                active["now"] -= 1
                intervals.append((int(job.payload), start, time.monotonic()))  # type: ignore[arg-type]

    def node() -> bgjobs.BgJobs:
        return (
            bgjobs.new(store_factory())
            .with_queue(
                bgjobs.queue("serial")
                .with_blocking()
                .with_max_concurrent_jobs(5)
                .with_worker(bgjobs.worker("step", step).with_backoff(FAST))
            )
            .build()
        )

    one, two = node(), node()
    one.enqueue_many([("step", n) for n in range(8)])
    with one, two:
        wait_until(lambda: len(intervals) == 10, 15, "8 jobs + 2 failed attempts")
    order = [n for n, _, _ in intervals]
    assert order == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert active["peak"] == 1, "two nodes never ran two jobs of a blocking queue at once"
