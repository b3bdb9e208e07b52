"""End-to-end processing on a real database: success, retries, async, events, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs.adapters.base import JobFilter, Store
from bgjobs.events import (
    JobDiscarded,
    JobFailed,
    JobReleased,
    JobStarted,
    JobSucceeded,
    RuntimeStarted,
    RuntimeStopped,
    SupervisorRestarted,
)

FAST_RETRY = bgjobs.constant(timedelta(milliseconds=20))


def finished(store: Store, state: bgjobs.JobState) -> list[bgjobs.Job]:
    return store.list_jobs(JobFilter(state=state, limit=10_000))


def test_jobs_run_once_and_are_archived(store: Store, started: Callable) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def work(job: bgjobs.Job) -> None:
        with lock:
            seen.append(job.payload["n"])  # type: ignore[index,call-overload]

    bg = started(
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("q").with_max_concurrent_jobs(5).with_worker(bgjobs.worker("work", work))
        )
        .build()
    )
    bg.enqueue_many([("work", {"n": n}) for n in range(300)])
    wait_until(lambda: len(finished(store, bgjobs.JobState.SUCCEEDED)) == 300, 20, "300 done")
    assert sorted(seen) == list(range(300))
    assert store.list_jobs(JobFilter(state=bgjobs.JobState.AVAILABLE)) == []


def test_failures_retry_with_persisted_backoff_then_fail(store: Store, started: Callable) -> None:
    recorder = Recorder()
    attempts: list[int] = []

    def flaky(job: bgjobs.Job) -> None:
        attempts.append(job.attempt)
        raise RuntimeError(f"attempt {job.attempt} failed")

    bg = started(
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(
            bgjobs.queue("q").with_worker(
                bgjobs.worker("flaky", flaky).with_max_attempts(3).with_backoff(FAST_RETRY)
            )
        )
        .build()
    )
    job = bg.enqueue("flaky")
    wait_until(lambda: recorder.of(JobDiscarded), 10, "job to fail for good")
    assert attempts == [1, 2, 3]
    failed = store.get_job(job.id)
    assert failed is not None and failed.state is bgjobs.JobState.FAILED
    assert [e.message for e in failed.errors] == [f"attempt {n} failed" for n in (1, 2, 3)]
    assert all(e.type == "RuntimeError" and "Traceback" in e.traceback for e in failed.errors)
    retries = recorder.of(JobFailed)
    assert len(retries) == 2 and all(e.retry_at > e.at for e in retries)


def test_retry_waits_for_backoff_in_the_database(store: Store, started: Callable) -> None:
    calls: list[float] = []

    def once_fails(job: bgjobs.Job) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise ValueError("first time")

    bg = started(
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("q").with_worker(
                bgjobs.worker("w", once_fails).with_backoff(bgjobs.constant(timedelta(seconds=0.5)))
            )
        )
        .build()
    )
    job = bg.enqueue("w")
    wait_until(lambda: len(calls) == 1, 5)
    wait_until(
        lambda: (
            (j := store.get_job(job.id)) is not None and j.attempt == 1 and j.reserved_by is None
        ),
        5,
        "retry persisted",
    )
    pending = store.get_job(job.id)
    assert pending is not None and pending.state is bgjobs.JobState.SCHEDULED
    wait_until(lambda: len(calls) == 2, 5, "second attempt")
    assert calls[1] - calls[0] >= 0.45


def test_async_handlers_run_concurrently_on_one_loop(store: Store, started: Callable) -> None:
    running = 0
    peak = 0
    loops: set[int] = set()

    async def slow(job: bgjobs.Job) -> None:
        nonlocal running, peak
        loops.add(id(asyncio.get_running_loop()))
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.2)
        running -= 1

    bg = started(
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("q").with_max_concurrent_jobs(10).with_worker(bgjobs.worker("slow", slow))
        )
        .build()
    )
    bg.enqueue_many([("slow", None)] * 10)
    wait_until(lambda: len(finished(store, bgjobs.JobState.SUCCEEDED)) == 10, 10)
    assert peak >= 5 and len(loops) == 1


def test_max_concurrent_jobs_is_a_hard_limit(store: Store, started: Callable) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(job: bgjobs.Job) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    bg = started(
        bgjobs.new(store)
        .with_queue(
            bgjobs.queue("q").with_max_concurrent_jobs(3).with_worker(bgjobs.worker("w", work))
        )
        .build()
    )
    bg.enqueue_many([("w", None)] * 30)
    wait_until(lambda: len(finished(store, bgjobs.JobState.SUCCEEDED)) == 30, 15)
    assert peak == 3


def test_events_reach_global_queue_and_worker_listeners(store: Store, started: Callable) -> None:
    everything, queue_level, worker_level, other_worker = (Recorder() for _ in range(4))

    def boom(job: bgjobs.Job) -> None:
        raise ValueError("x")

    def raising_listener(event: bgjobs.Event) -> None:
        raise RuntimeError("listener bug")

    bg = started(
        bgjobs.new(store)
        .with_event_listener(everything)
        .with_event_listener(raising_listener)
        .with_queue(
            bgjobs.queue("q")
            .with_event_listener(queue_level)
            .with_worker(bgjobs.worker("ok", lambda j: None).with_event_listener(worker_level))
            .with_worker(
                bgjobs.worker("boom", boom).with_max_attempts(1).with_event_listener(other_worker)
            )
        )
        .build()
    )
    bg.enqueue("ok")
    bg.enqueue("boom")
    # One emit delivers to the global listeners first, then the queue's, then the worker's:
    # wait until the narrowest scopes have it too.
    wait_until(
        lambda: (
            queue_level.of(JobSucceeded)
            and queue_level.of(JobDiscarded)
            and worker_level.of(JobSucceeded)
            and other_worker.of(JobDiscarded)
        ),
        10,
    )
    assert everything.of(RuntimeStarted)
    assert everything.of(JobSucceeded) and everything.of(JobDiscarded)
    assert {type(e) for e in queue_level.events} >= {JobStarted, JobSucceeded, JobDiscarded}
    assert {e.job.name for e in worker_level.of(JobStarted)} == {"ok"}
    assert {e.job.name for e in other_worker.of(JobStarted)} == {"boom"}
    bg.stop()
    assert everything.of(RuntimeStopped)


def test_delete_on_success_retention(store: Store, started: Callable) -> None:
    bg = started(
        bgjobs.new(store)
        .with_retention(succeeded=timedelta(0))
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda j: None)))
        .build()
    )
    job = bg.enqueue("w")
    wait_until(lambda: store.get_job(job.id) is None, 10, "job deleted on success")


def test_priority_order_within_a_queue(store: Store, started: Callable) -> None:
    order: list[int] = []
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue("q")
        .with_max_concurrent_jobs(1)
        .with_worker(bgjobs.worker("w", lambda j: order.append(j.priority)))
    )
    producer = spec.build()
    producer.enqueue_many([bgjobs.JobRequest("w", priority=p) for p in (5, 1, 3, 0, 2)])
    started(spec.build())
    wait_until(lambda: len(order) == 5, 10)
    assert order == [0, 1, 2, 3, 5]


def test_stop_releases_unfinished_jobs_without_spending_attempts(
    store: Store, started: Callable
) -> None:
    recorder = Recorder()
    gate = threading.Event()
    entered = threading.Semaphore(0)

    def blocked(job: bgjobs.Job) -> None:
        entered.release()
        gate.wait(10)

    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(
            bgjobs.queue("q").with_max_concurrent_jobs(2).with_worker(bgjobs.worker("b", blocked))
        )
        .build()
    )
    bg.start()
    jobs = bg.enqueue_many([("b", None)] * 3)
    assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
    bg.stop(timeout=0.2)
    gate.set()
    released = recorder.of(JobReleased)
    assert len(released) == 2
    for job in jobs:
        stored = store.get_job(job.id)
        assert stored is not None and stored.state is bgjobs.JobState.AVAILABLE
        assert stored.attempt == 0, "a released attempt is not counted"


class Crash(BaseException):
    """Not an Exception: escapes the loop's error handling, as a bug in bgjobs would."""


class CrashingClaims:
    """A real store whose claim() crashes the first ``crashes`` times (fault injection)."""

    def __init__(self, store: Store, crashes: int) -> None:
        self._store = store
        self.crashes = crashes

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def claim(self, request: object) -> list[bgjobs.Job]:
        if self.crashes > 0:
            self.crashes -= 1
            raise Crash("injected crash")
        return self._store.claim(request)  # type: ignore[arg-type]


def test_supervisor_restarts_a_crashed_loop(store: Store) -> None:
    recorder = Recorder()
    done = threading.Event()
    bg = (
        bgjobs.new(CrashingClaims(store, crashes=2))  # type: ignore[arg-type]
        .with_event_listener(recorder)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda j: done.set())))
        .build()
    )
    with bg:
        bg.enqueue("w")
        assert done.wait(10)
    restarts = recorder.of(SupervisorRestarted)
    assert [r.restarts for r in restarts] == [1, 2] and "injected" in restarts[0].error


def test_supervisor_gives_up_past_the_restart_limit(store: Store) -> None:
    bg = (
        bgjobs.new(CrashingClaims(store, crashes=1000))  # type: ignore[arg-type]
        .with_supervisor(2, 60)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda j: None)))
        .build()
    )
    with pytest.raises(bgjobs.RuntimeStateError, match="crashed more than 2 times"):
        bg.run(install_signal_handlers=False)


class SlowClaims(CrashingClaims):
    """A real store whose claim() takes a while, so stop() can begin while a claim is in flight."""

    def __init__(self, store: Store, crashes: int) -> None:
        super().__init__(store, crashes)
        self.claiming = threading.Event()  # per instance: each backend's run waits on its own

    def claim(self, request: object) -> list[bgjobs.Job]:
        self.claiming.set()
        time.sleep(0.5)
        return self._store.claim(request)  # type: ignore[arg-type]


def test_stop_during_an_in_flight_claim_leaves_nothing_reserved(store: Store) -> None:
    gate = threading.Event()
    slow = SlowClaims(store, crashes=0)
    bg = (
        bgjobs.new(slow)  # type: ignore[arg-type]
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda j: gate.wait(10))))
        .build()
    )
    job = bg.enqueue("w")
    bg.start()
    assert slow.claiming.wait(5), "a claim is in flight"
    bg.stop(timeout=0.2)
    gate.set()
    stored = store.get_job(job.id)
    assert stored is not None and stored.reserved_by is None
    assert stored.state is not bgjobs.JobState.RUNNING
