"""Shutdown always ends: stop() returns within the grace (plus a bounded time for the final
writes) even while another process holds the database, and says which jobs it could not write.

The lock is a real one: ``BEGIN EXCLUSIVE`` in another OS process on SQLite, ``LOCK TABLE ... IN
ACCESS EXCLUSIVE MODE`` in another session on Postgres.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from tests.conftest import PG_URL
from tests.support.locker import hold_lock, let_go

import bgjobs
from bgjobs import Store

GRACE = 1.5
# What stop() may take beyond its bound on a loaded machine: thread joins, the last write's
# lock-wait slice, scheduling.
MARGIN = 2.0


@contextmanager
def database_locked(store: Store) -> Iterator[None]:
    if store.backend == "sqlite":
        locker = hold_lock(Path(store.path))  # type: ignore[attr-defined]
        try:
            yield
        finally:
            let_go(locker)
        return
    with psycopg.connect(PG_URL) as conn:  # a transaction: the lock lasts until it ends
        schema = store.schema  # type: ignore[attr-defined]
        conn.execute(f'LOCK TABLE "{schema}".bgjobs_jobs IN ACCESS EXCLUSIVE MODE')
        try:
            yield
        finally:
            conn.rollback()


class Handlers:
    """``quick`` jobs return once ``finish`` is set; ``slow`` ones only at the end of the test."""

    def __init__(self) -> None:
        self.finish = threading.Event()
        self.never = threading.Event()
        self.entered = threading.Semaphore(0)

    def quick(self, job: bgjobs.Job) -> None:
        self.entered.release()
        self.finish.wait(60)

    def slow(self, job: bgjobs.Job) -> None:
        self.entered.release()
        self.never.wait(60)


def build(store: Store, handlers: Handlers) -> bgjobs.BgJobs:
    return (
        bgjobs.new(store)
        .with_shutdown_grace(GRACE)
        .with_queue(
            bgjobs.queue("q")
            .with_max_concurrent_jobs(4)
            .with_worker(bgjobs.worker("quick", handlers.quick))
            .with_worker(bgjobs.worker("slow", handlers.slow))
        )
        .build()
    )


def stop_while_locked(bg: bgjobs.BgJobs, store: Store, handlers: Handlers, bound: float) -> float:
    """Lock the database, let the quick handlers return, stop; how long stop() took (it must
    return within ``bound``, or this fails once the lock is let go)."""
    taken: list[float] = []

    def stop() -> None:
        started = time.monotonic()
        bg.stop()
        taken.append(time.monotonic() - started)

    stopper = threading.Thread(target=stop)
    with database_locked(store):
        handlers.finish.set()  # their outcomes cannot be written now
        stopper.start()
        stopper.join(bound)
        in_time = not stopper.is_alive()
    stopper.join(120)  # with the lock gone it ends in any case; don't leave it behind
    handlers.never.set()
    assert in_time, f"stop() had not returned {bound:.1f}s after it was called"
    return taken[0]


def test_stop_ends_within_the_grace_while_the_database_is_locked(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    handlers = Handlers()
    bg = build(store, handlers)
    bg.start()
    jobs = bg.enqueue_many([("quick", {"i": i}) for i in range(3)])
    for _ in jobs:
        assert handlers.entered.acquire(timeout=10)
    with caplog.at_level(logging.ERROR, logger="bgjobs"):
        taken = stop_while_locked(bg, store, handlers, GRACE + MARGIN)
    assert taken < GRACE + MARGIN
    unwritten = [r.getMessage() for r in caplog.records if "unwritten" in r.getMessage()]
    assert unwritten, caplog.text
    assert all(str(job.id) in unwritten[0] for job in jobs), unwritten
    # Nothing was lost: the jobs are still reserved, so the rescuer runs them after the lease.
    for job in jobs:
        stored = store.get_job(job.id)
        assert stored is not None and stored.state is bgjobs.JobState.RUNNING


def test_jobs_past_the_grace_are_named_when_they_cannot_be_released(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    handlers = Handlers()
    bg = build(store, handlers)
    bg.start()
    quick = bg.enqueue("quick", {"i": 1})
    slow = bg.enqueue("slow", {"i": 2})
    for _ in range(2):
        assert handlers.entered.acquire(timeout=10)
    # The slow job holds the whole grace; the final writes then get at most min(grace, 5 s).
    bound = GRACE + min(max(GRACE, 1.0), 5.0) + MARGIN
    with caplog.at_level(logging.ERROR, logger="bgjobs"):
        taken = stop_while_locked(bg, store, handlers, bound)
    assert taken < bound
    text = caplog.text
    assert f"[{slow.id}]" in text and "not released" in text, text
    assert f"[{quick.id}]" in text and "unwritten" in text, text
