"""The bgjobs side of the throughput benchmarks, for any backend: a store in, jobs/s out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from common import BenchmarkFailed, Stopwatch
from exactly_once import RunLedger

import bgjobs
from bgjobs import BgJobs, Event, Job, JobRequest, Store
from bgjobs.adapters.base import ClaimRequest
from bgjobs.events import JobSucceeded

QUEUE = "default"
FILL_CHUNK = 1000
GATE_TIMEOUT = 120.0


def noop(job: Job) -> None:
    return None


def job_index(job: Job) -> int:
    """The ``i`` of a benchmark job's ``{"i": i}`` payload."""
    payload = job.payload
    assert isinstance(payload, dict)
    return int(str(payload["i"]))


def recording(ledger: RunLedger) -> Callable[[Job], None]:
    """A handler that notes each job's payload index in ``ledger`` (the raw loops decode each
    payload too, so both sides do the same work per job)."""

    def handler(job: Job) -> None:
        ledger.record(job_index(job))

    return handler


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
    """A listener that sets ``done`` once ``target`` jobs have succeeded, and notes when."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.finished_at = 0.0  # perf_counter
        self.done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobSucceeded):
            with self._lock:
                self.count += 1
                if self.count == self.target:
                    self.finished_at = time.perf_counter()
                    self.done.set()


class GatedStore:
    """A store whose claims wait for ``go()``, and which notes when the first claim that found
    jobs began. The runtime starts up (connects, registers its node, starts its loops) with the
    gate shut, so a drain is timed from its first claim, as the raw loop is after connecting."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.perf_counter) -> None:
        self._store = store
        self._clock = clock
        self._gate = threading.Event()
        self.first_claim: float | None = None

    def as_store(self) -> Store:
        return cast(Store, self)

    def go(self) -> None:
        self._gate.set()

    def claim(self, request: ClaimRequest) -> list[Job]:
        self._gate.wait(GATE_TIMEOUT)  # shut for good only if the driver died: then drain anyway
        started = self._clock()
        jobs = self._store.claim(request)
        if jobs and self.first_claim is None:
            self.first_claim = started
        return jobs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def drain(store: Store, count: int, concurrency: int, *, keep_succeeded: bool) -> float:
    """Fill the queue with ``count`` jobs (their handler only notes its payload index), start a
    runtime behind a shut gate, open it, and time from the first claim to the last JobSucceeded
    (emitted after the completion commits, so the hot table is then empty, which is checked).
    Every job must have run exactly once. Returns jobs per second."""
    ledger = RunLedger("bgjobs drain")
    counter = SuccessCounter(count)
    gated = GatedStore(store)
    bg = build(gated.as_store(), concurrency=concurrency, handler=recording(ledger),
               keep_succeeded=keep_succeeded, listener=counter)
    fill(bg, count)
    bg.start()
    try:
        gated.go()
        finished = counter.done.wait(timeout=max(60.0, count / 100))
    finally:
        bg.stop(timeout=5)
    if not finished:
        raise BenchmarkFailed(f"bgjobs drain finished {counter.count} of {count} jobs in time")
    ledger.check(range(count))
    left = sum(s.available + s.scheduled + s.running for s in store.queue_stats(timedelta(0)))
    if left:
        raise BenchmarkFailed(f"bgjobs drain left {left} jobs in the hot table")
    assert gated.first_claim is not None  # jobs ran, so a claim found them
    return count / (counter.finished_at - gated.first_claim)


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
