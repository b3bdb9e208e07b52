"""SQLite benchmarks: drain, enqueue, wake-up latency and scheduler skew, each against raw SQL
on the same database file (a fresh file per measurement)."""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import latency
import raw
import skew
import workloads
from common import Figure, Settings, section, throughput
from common import latency as latency_figures
from raw_sqlite import SQLiteRawQueue

import bgjobs
from bgjobs import Store

BACKEND = "sqlite"


@contextmanager
def database(tmp: Path, label: str) -> Iterator[tuple[Store, raw.RawFactory]]:
    """A fresh database file: a migrated bgjobs store and a raw-queue factory on that file."""
    path = tmp / f"{label}.db"
    for leftover in tmp.glob(f"{label}.db*"):
        if leftover.is_dir():  # the nodes' liveness lock files (<db>.nodes/)
            shutil.rmtree(leftover)
        else:
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


def drain(tmp: Path, s: Settings) -> list[Figure]:
    figures = []
    rounds = 1 if s.quick else 3
    for keep, label in ((True, "archive on success (default)"), (False, "delete on success")):
        ours, base = _median_rounds(
            tmp, "drain", rounds,
            partial(workloads.drain, count=s.jobs, concurrency=s.concurrency,
                    keep_succeeded=keep),
            lambda queue: raw.drain(queue, s.jobs, s.concurrency),
        )
        name = f"drain {s.jobs:,} no-op jobs, {label}"
        figures.append(throughput(BACKEND, name, ours, base, 0.5))
    return figures


def enqueue(tmp: Path, s: Settings) -> list[Figure]:
    rounds = 1 if s.quick else 3
    ours, base = _median_rounds(
        tmp, "enqueue", rounds,
        lambda store: workloads.enqueue_one_by_one(store, s.jobs),
        lambda queue: raw.enqueue_one_by_one(queue, s.jobs),
    )
    single = throughput(BACKEND, f"enqueue {s.jobs:,}, one job per transaction", ours, base, 0.8)
    ours, base = _median_rounds(
        tmp, "enqueue", rounds,
        lambda store: workloads.enqueue_batches(store, s.jobs, s.enqueue_batch),
        lambda queue: raw.enqueue_batches(queue, s.jobs, s.enqueue_batch),
    )
    many = throughput(BACKEND, f"enqueue_many, {s.enqueue_batch} jobs per call", ours, base, None)
    return [single, many]


def wakeup(tmp: Path, s: Settings) -> list[Figure]:
    with database(tmp, "latency") as (store, factory):
        base = latency.raw_latency(factory, s.latency_samples)
        ours = latency.bgjobs_latency(store, s.latency_samples)
    return latency_figures(BACKEND, "wake-up latency (in process)", ours, base, 5, 20)


@contextmanager
def skew_lane() -> Iterator[skew.Lane]:
    """The SQLite lane of the scheduler-skew benchmark (run by run_all with the other lanes)."""
    with (
        tempfile.TemporaryDirectory(prefix="bgjobs-bench-", ignore_cleanup_errors=True) as name,
        database(Path(name), "skew") as (store, factory),
    ):
        yield skew.Lane(BACKEND, store, factory)


def run(s: Settings) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bgjobs-bench-", ignore_cleanup_errors=True) as name:
        tmp = Path(name)
        with section(f"SQLite drain ({s.jobs:,} jobs, max_concurrent_jobs={s.concurrency})"):
            figures += drain(tmp, s)
        with section(f"SQLite enqueue ({s.jobs:,} jobs)"):
            figures += enqueue(tmp, s)
        with section(f"SQLite wake-up latency ({s.latency_samples} jobs)"):
            figures += wakeup(tmp, s)
    return figures
