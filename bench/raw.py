"""The raw-SQL baselines: the least a durable queue must do, with no library around it.

A backend supplies a :class:`RawQueue` (one connection, one transaction per call); the routines
here drive it the same way on every backend. The baseline table is a minimal queue table
(``bench_raw_jobs``: id, queue, name, payload, priority, attempt, times, lease columns and one
partial claim index) living in the same database as the bgjobs tables.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from common import BenchmarkFailed, Stopwatch
from exactly_once import RunLedger

RAW_NODE = "raw-baseline"


class RawQueue(Protocol):
    def reset(self) -> None:
        """Create the baseline table if needed and empty it."""

    def insert_one(self, payload: str, available_us: int | None = None) -> None:
        """INSERT one job and COMMIT."""

    def insert_many(self, payloads: Sequence[str]) -> None:
        """INSERT many jobs in one transaction."""

    def claim(self, limit: int) -> list[tuple[int, str]]:
        """Reserve up to ``limit`` due jobs in one transaction; return (id, payload)."""

    def delete(self, ids: Sequence[int]) -> None:
        """Delete finished jobs in one transaction."""

    def count(self) -> int: ...

    def close(self) -> None: ...


RawFactory = Callable[[], RawQueue]


def payloads(count: int) -> list[str]:
    return [json.dumps({"i": i}) for i in range(count)]


def fill(queue: RawQueue, count: int, chunk: int = 1000) -> None:
    data = payloads(count)
    for start in range(0, count, chunk):
        queue.insert_many(data[start:start + chunk])


def drain(queue: RawQueue, count: int, batch: int) -> float:
    """Claim ``batch`` jobs, note each one's payload index, delete the batch; repeat until the
    table is empty. Every job must have run exactly once. Returns jobs per second."""
    queue.reset()
    fill(queue, count)
    return drain_filled(queue, count, batch)


def drain_filled(queue: RawQueue, count: int, batch: int) -> float:
    """``drain`` on a queue somebody else filled with ``count`` jobs."""
    ledger = RunLedger("raw drain")
    with Stopwatch() as sw:
        while rows := queue.claim(batch):
            for _, payload in rows:
                ledger.record(json.loads(payload)["i"])
            queue.delete([job_id for job_id, _ in rows])
    ledger.check(range(count))
    if queue.count() != 0:
        raise BenchmarkFailed(f"raw drain left {queue.count()} jobs in its table")
    return count / sw.seconds


def enqueue_one_by_one(queue: RawQueue, count: int) -> float:
    """One INSERT + COMMIT per job. Returns jobs per second."""
    queue.reset()
    data = payloads(count)
    with Stopwatch() as sw:
        for payload in data:
            queue.insert_one(payload)
    return count / sw.seconds


def enqueue_batches(queue: RawQueue, count: int, batch: int) -> float:
    """``batch`` INSERTs per transaction. Returns jobs per second."""
    queue.reset()
    data = payloads(count)
    with Stopwatch() as sw:
        for start in range(0, count, batch):
            queue.insert_many(data[start:start + batch])
    return count / sw.seconds


class RawConsumer:
    """A consumer thread that sleeps on an in-process Event, then claims and runs jobs; the
    raw floor for in-process wake-up latency."""

    def __init__(self, factory: RawFactory, handler: Callable[[str], None], batch: int) -> None:
        self._factory = factory
        self._handler = handler
        self._batch = batch
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raw-consumer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        queue = self._factory()
        try:
            while not self._stop.is_set():
                self.wake.wait(0.1)
                self.wake.clear()
                while rows := queue.claim(self._batch):
                    for _, payload in rows:
                        self._handler(payload)
                    queue.delete([job_id for job_id, _ in rows])
        finally:
            queue.close()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        self._thread.join(5)


def scheduled_ticks(factory: RawFactory, seconds: float, phase: float) -> list[float]:
    """A raw every-second scheduler: the next run is a row due at ``k + phase`` (epoch seconds);
    sleep until it is due, claim it, record (claim time - due) in ms, delete it, insert the
    next. The floor for scheduler skew."""
    queue = factory()
    queue.reset()
    skews: list[float] = []
    try:
        end = time.time() + seconds
        due = _next_tick(time.time(), phase)
        queue.insert_one("null", int(due * 1_000_000))
        while due < end:
            time.sleep(max(due - time.time(), 0.0))
            rows = queue.claim(1)
            if not rows:  # woke a hair early: the row is not due yet
                continue
            skews.append((time.time() - due) * 1000)
            queue.delete([rows[0][0]])
            due = _next_tick(due, phase)
            queue.insert_one("null", int(due * 1_000_000))
    finally:
        queue.close()
    return skews


def _next_tick(after: float, phase: float) -> float:
    return float(int(after - phase) + 1) + phase
