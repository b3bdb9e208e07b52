"""The bgjobs side of the throughput benchmarks, for any backend: a store in, jobs/s out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from common import Stopwatch

import bgjobs
from bgjobs import BgJobs, Event, Job, JobRequest, Store
from bgjobs.events import JobSucceeded

QUEUE = "default"
FILL_CHUNK = 1000


def noop(job: Job) -> None:
    return None


def job_index(job: Job) -> int:
    """The ``i`` of a benchmark job's ``{"i": i}`` payload."""
    payload = job.payload
    assert isinstance(payload, dict)
    return int(str(payload["i"]))


def build(
    store: Store,
    *,
    concurrency: int = 32,
    handler: Callable[[Job], None] = noop,
    keep_succeeded: bool = True,
    listener: Callable[[Event], None] | None = None,
    name: str = "noop",
) -> BgJobs:
    """One queue with one worker; ``keep_succeeded=False`` deletes jobs as they succeed."""
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue(QUEUE)
        .with_max_concurrent_jobs(concurrency)
        .with_worker(bgjobs.worker(name, handler))
    )
    if not keep_succeeded:
        spec = spec.with_retention(succeeded=timedelta(0))
    if listener is not None:
        spec = spec.with_event_listener(listener)
    return spec.build()


def fill(bg: BgJobs, count: int, name: str = "noop") -> None:
    for start in range(0, count, FILL_CHUNK):
        bg.enqueue_many(
            [JobRequest(name, {"i": i}) for i in range(start, min(start + FILL_CHUNK, count))]
        )


class SuccessCounter:
    """A listener that sets ``done`` once ``target`` jobs have succeeded."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobSucceeded):
            with self._lock:
                self.count += 1
                if self.count >= self.target:
                    self.done.set()


def drain(store: Store, count: int, concurrency: int, *, keep_succeeded: bool) -> float:
    """Fill the queue with ``count`` no-op jobs, then time start() until the last JobSucceeded
    (which the runtime emits after the completion is committed, so the hot table is empty).
    Returns jobs per second."""
    counter = SuccessCounter(count)
    bg = build(store, concurrency=concurrency, keep_succeeded=keep_succeeded, listener=counter)
    fill(bg, count)
    with Stopwatch() as sw:
        bg.start()
        finished = counter.done.wait(timeout=max(60.0, count / 100))
    bg.stop(timeout=5)
    if not finished:
        raise RuntimeError(f"bgjobs drain finished {counter.count} of {count} jobs in time")
    left = sum(s.available + s.scheduled + s.running for s in store.queue_stats(timedelta(0)))
    if left:
        raise RuntimeError(f"bgjobs drain left {left} jobs in the hot table")
    return count / sw.seconds


def enqueue_one_by_one(store: Store, count: int) -> float:
    """``bg.enqueue`` ``count`` times: one transaction per job. Returns jobs per second."""
    bg = build(store)
    bg.enqueue("noop", {"i": -1})  # opens the store outside the timing
    with Stopwatch() as sw:
        for i in range(count):
            bg.enqueue("noop", {"i": i})
    return count / sw.seconds


def enqueue_batches(store: Store, count: int, batch: int) -> float:
    """``bg.enqueue_many`` with ``batch`` jobs per call. Returns jobs per second."""
    bg = build(store)
    bg.enqueue("noop", {"i": -1})
    with Stopwatch() as sw:
        for start in range(0, count, batch):
            bg.enqueue_many(
                [JobRequest("noop", {"i": i}) for i in range(start, min(start + batch, count))]
            )
    return count / sw.seconds
