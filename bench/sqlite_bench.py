"""SQLite benchmarks: drain, enqueue, wake-up latency and scheduler skew, each against raw SQL
on the same database file (a fresh file per measurement)."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import bgjobs
import latency
import raw
import skew
import workloads
from bgjobs import Store
from common import Figure, Settings, section, show
from raw_sqlite import SQLiteRawQueue

BACKEND = "sqlite"


@contextmanager
def database(tmp: Path, label: str) -> Iterator[tuple[Store, raw.RawFactory]]:
    """A fresh database file: a migrated bgjobs store and a raw-queue factory on that file."""
    path = tmp / f"{label}.db"
    for leftover in tmp.glob(f"{label}.db*"):
        leftover.unlink()
    store = bgjobs.sqlite(path)
    store.open()
    try:
        yield store, lambda: SQLiteRawQueue(path)
    finally:
        store.close()


def _median_rounds(
    tmp: Path, label: str, rounds: int,
    ours: Callable[[Store], float], theirs: Callable[[raw.RawQueue], float],
) -> tuple[float, float]:
    """Median jobs/s of bgjobs and raw over ``rounds`` fresh databases (interleaved)."""
    mine: list[float] = []
    base: list[float] = []
    for _ in range(rounds):
        with database(tmp, label) as (store, factory):
            queue = factory()
            try:
                base.append(theirs(queue))
            finally:
                queue.close()
            mine.append(ours(store))
    return statistics.median(mine), statistics.median(base)


def _throughput(name: str, ours: float, base: float, minimum: float | None) -> Figure:
    met = None if minimum is None else ours >= minimum * base
    target = f">= {minimum}x raw" if minimum is not None else ""
    figure = Figure(BACKEND, name, "jobs/s", ours, base, True, target, met)
    show(figure)
    return figure


def drain(tmp: Path, s: Settings) -> list[Figure]:
    figures = []
    rounds = 1 if s.quick else 3
    for keep, label in ((True, "archive on success (default)"), (False, "delete on success")):
        ours, base = _median_rounds(
            tmp, "drain", rounds,
            lambda store, keep=keep: workloads.drain(store, s.jobs, s.concurrency,
                                                     keep_succeeded=keep),
            lambda queue: raw.drain(queue, s.jobs, s.concurrency),
        )
        figures.append(_throughput(f"drain {s.jobs:,} no-op jobs, {label}", ours, base, 0.5))
    return figures


def enqueue(tmp: Path, s: Settings) -> list[Figure]:
    rounds = 1 if s.quick else 3
    ours, base = _median_rounds(
        tmp, "enqueue", rounds,
        lambda store: workloads.enqueue_one_by_one(store, s.jobs),
        lambda queue: raw.enqueue_one_by_one(queue, s.jobs),
    )
    single = _throughput(f"enqueue {s.jobs:,}, one job per transaction", ours, base, 0.8)
    ours, base = _median_rounds(
        tmp, "enqueue", rounds,
        lambda store: workloads.enqueue_batches(store, s.jobs, s.enqueue_batch),
        lambda queue: raw.enqueue_batches(queue, s.jobs, s.enqueue_batch),
    )
    many = _throughput(f"enqueue_many, {s.enqueue_batch} jobs per call", ours, base, None)
    return [single, many]


def wakeup(tmp: Path, s: Settings) -> list[Figure]:
    with database(tmp, "latency") as (store, factory):
        base = latency.raw_latency(factory, s.latency_samples)
        ours = latency.bgjobs_latency(store, s.latency_samples)
    print(f"   bgjobs {ours.describe()}\n   raw    {base.describe()}")
    figures = [
        Figure(BACKEND, "wake-up latency p50 (in process)", "ms", ours.p50, base.p50, False,
               "<= 5 ms", ours.p50 <= 5),
        Figure(BACKEND, "wake-up latency p99 (in process)", "ms", ours.p99, base.p99, False,
               "<= 20 ms", ours.p99 <= 20),
    ]
    for figure in figures:
        show(figure)
    return figures


def scheduler_skew(tmp: Path, s: Settings) -> list[Figure]:
    with database(tmp, "skew") as (store, factory):
        ours, base = skew.skew(store, factory, s.skew_seconds)
    print(f"   bgjobs {ours.describe()}\n   raw    {base.describe()}")
    figures = [
        Figure(BACKEND, "scheduler skew p50 (every 1 s)", "ms", ours.p50, base.p50, False),
        Figure(BACKEND, "scheduler skew p99 (every 1 s)", "ms", ours.p99, base.p99, False,
               "<= 10 ms", ours.p99 <= 10),
        Figure(BACKEND, "scheduler skew max (every 1 s)", "ms", ours.max, base.max, False),
    ]
    for figure in figures:
        show(figure)
    return figures


def run(s: Settings) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bgjobs-bench-") as name:
        tmp = Path(name)
        with section(f"SQLite drain ({s.jobs:,} jobs, max_concurrent_jobs={s.concurrency})"):
            figures += drain(tmp, s)
        with section(f"SQLite enqueue ({s.jobs:,} jobs)"):
            figures += enqueue(tmp, s)
        with section(f"SQLite wake-up latency ({s.latency_samples} jobs)"):
            figures += wakeup(tmp, s)
        with section(f"SQLite scheduler skew ({s.skew_seconds:.0f} s)"):
            figures += scheduler_skew(tmp, s)
    return figures
