"""Where the SQLite drain and enqueue time goes: a ladder from the raw-SQL floor to bgjobs.

    python bench/breakdown.py [--jobs 10000] [--concurrency 32]

Each rung adds one layer, so the drop between two rungs is that layer's cost:

  drain:   raw minimal table -> same raw claim/delete on bgjobs_jobs (schema + query plan)
           -> ... with the claim index forced -> SQLiteStore.claim/complete in one thread (the
           store's statements and Job building) -> the runtime on a Python-only store (threads,
           events, hand-offs) -> bgjobs on SQLite.
  enqueue: raw INSERT into the minimal table -> raw INSERT into bgjobs_jobs (schema: indexes,
           AUTOINCREMENT) -> SQLiteStore.insert_jobs -> bg.enqueue.

Not part of ``run_all`` (it takes about a minute); run it after changing the runtime or store.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import raw
import workloads
from common import Stopwatch, say
from memory_store import memory_store
from raw_sqlite import SQLiteRawQueue

import bgjobs
from bgjobs.adapters.base import ClaimRequest, Completion, Outcome
from bgjobs.job import NewJob

ROUNDS = 3
NODE = "breakdown"
LEASE = timedelta(seconds=30)


def _median(measure: Callable[[Path], float], tmp: Path) -> float:
    values = []
    for round_ in range(ROUNDS):
        values.append(measure(tmp / f"r{round_}-{time.monotonic_ns()}.db"))
    return statistics.median(values)


def _migrated(path: Path) -> None:
    store = bgjobs.sqlite(path)
    store.open()
    store.close()


def _filled(path: Path, count: int) -> bgjobs.Store:
    store = bgjobs.sqlite(path)
    store.open()
    workloads.fill(workloads.build(store), count)
    return store


def raw_minimal(count: int, batch: int) -> Callable[[Path], float]:
    def measure(path: Path) -> float:
        _migrated(path)
        return raw.drain(SQLiteRawQueue(path), count, batch)
    return measure


def raw_on_bgjobs_table(count: int, batch: int, index: str | None) -> Callable[[Path], float]:
    def measure(path: Path) -> float:
        _filled(path, count).close()
        queue = SQLiteRawQueue(path, table="bgjobs_jobs", index=index)
        return raw.drain_filled(queue, count, batch)
    return measure


def store_only(count: int, batch: int, keep: bool) -> Callable[[Path], float]:
    """The store's own claim and complete, one thread, no runtime around them."""
    def measure(path: Path) -> float:
        store = _filled(path, count)
        request = ClaimRequest(queue=workloads.QUEUE, node_id=NODE, limit=batch, lease=LEASE)
        with Stopwatch() as sw:
            while jobs := store.claim(request):
                for job in jobs:
                    _ = job.payload
                store.complete([Completion(job=job, node_id=NODE, outcome=Outcome.SUCCEEDED,
                                           keep=keep) for job in jobs])
        store.close()
        return count / sw.seconds
    return measure


def runtime_only(count: int, concurrency: int) -> Callable[[Path], float]:
    def measure(path: Path) -> float:
        return workloads.drain(memory_store(), count, concurrency, keep_succeeded=False)
    return measure


def full(count: int, concurrency: int, keep: bool) -> Callable[[Path], float]:
    def measure(path: Path) -> float:
        store = bgjobs.sqlite(path)
        store.open()
        try:
            return workloads.drain(store, count, concurrency, keep_succeeded=keep)
        finally:
            store.close()
    return measure


def raw_insert_minimal(count: int) -> Callable[[Path], float]:
    def measure(path: Path) -> float:
        _migrated(path)
        return raw.enqueue_one_by_one(SQLiteRawQueue(path), count)
    return measure


def raw_insert_bgjobs_table(count: int) -> Callable[[Path], float]:
    """The columns bgjobs_jobs requires, one INSERT + COMMIT per job."""
    def measure(path: Path) -> float:
        _migrated(path)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous = NORMAL")
        data = raw.payloads(count)
        with Stopwatch() as sw:
            for payload in data:
                now = time.time_ns() // 1000
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO bgjobs_jobs (queue, name, payload, max_attempts, available_at,"
                    " created_at, scheduled_at) VALUES ('default', 'noop', ?, 20, ?, ?, ?)",
                    (payload, now, now, now),
                )
                conn.execute("COMMIT")
        conn.close()
        return count / sw.seconds
    return measure


def store_insert(count: int) -> Callable[[Path], float]:
    def measure(path: Path) -> float:
        store = bgjobs.sqlite(path)
        store.open()
        data = raw.payloads(count)
        with Stopwatch() as sw:
            for payload in data:
                store.insert_jobs([NewJob(queue=workloads.QUEUE, name="noop",
                                          raw_payload=payload, max_attempts=20)])
        store.close()
        return count / sw.seconds
    return measure


def enqueue(count: int) -> Callable[[Path], float]:
    def measure(path: Path) -> float:
        store = bgjobs.sqlite(path)
        try:
            return workloads.enqueue_one_by_one(store, count)
        finally:
            store.close()
    return measure


def ladder(title: str, rungs: list[tuple[str, Callable[[Path], float]]], tmp: Path) -> None:
    say(f"\n{title} (jobs/s, median of {ROUNDS})")
    floor: float | None = None
    for label, measure in rungs:
        rate = _median(measure, tmp)
        floor = floor or rate
        say(f"   {rate:>9,.0f}  {rate / floor:5.2f}x  {label}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    n, c = args.jobs, args.concurrency
    with tempfile.TemporaryDirectory(prefix="bgjobs-breakdown-",
                                     ignore_cleanup_errors=True) as name:
        tmp = Path(name)
        ladder(f"SQLite drain, {n:,} no-op jobs, batch/concurrency {c}", [
            ("raw claim + delete, minimal table (the baseline)", raw_minimal(n, c)),
            ("same SQL on bgjobs_jobs (bgjobs schema, planner's choice)",
             raw_on_bgjobs_table(n, c, None)),
            ("same SQL on bgjobs_jobs, INDEXED BY bgjobs_jobs_claim",
             raw_on_bgjobs_table(n, c, "bgjobs_jobs_claim")),
            ("SQLiteStore.claim + complete, one thread, delete on success",
             store_only(n, c, keep=False)),
            ("SQLiteStore.claim + complete, one thread, archive on success",
             store_only(n, c, keep=True)),
            ("bgjobs runtime on a Python-only store (no SQL at all)", runtime_only(n, c)),
            ("bgjobs on SQLite, delete on success", full(n, c, keep=False)),
            ("bgjobs on SQLite, archive on success (default)", full(n, c, keep=True)),
        ], tmp)
        ladder(f"SQLite enqueue, {n:,} jobs, one per transaction", [
            ("raw INSERT + COMMIT, minimal table (the baseline)", raw_insert_minimal(n)),
            ("raw INSERT + COMMIT into bgjobs_jobs", raw_insert_bgjobs_table(n)),
            ("SQLiteStore.insert_jobs, one job per call", store_insert(n)),
            ("bg.enqueue", enqueue(n)),
        ], tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
