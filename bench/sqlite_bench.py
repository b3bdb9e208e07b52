"""SQLite benchmarks: drain, enqueue, wake-up latency and scheduler skew, each against raw SQL
on the same database file (a fresh file per round; see rounds.py for the order of the sides)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import latency
import raw
import skew
import workloads
from common import Figure, Settings, section
from figures import latency as latency_figures
from figures import throughput
from raw_sqlite import SQLiteRawQueue
from rounds import Paired, interleaved, paired
from stats import Spread

import bgjobs
from bgjobs import Store

BACKEND = "sqlite"
Db = tuple[Store, raw.RawFactory]


@contextmanager
def database(tmp: Path, label: str) -> Iterator[Db]:
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


def _rounds(tmp: Path, label: str, s: Settings, ours: Callable[[Store], float],
            theirs: Callable[[raw.RawQueue], float]) -> Paired:
    """``s.rounds`` paired rounds, each on a fresh file; the raw side opens its own connection."""

    def raw_side(db: Db) -> float:
        queue = db[1]()
        try:
            return theirs(queue)
        finally:
            queue.close()

    return paired(s.rounds, lambda: database(tmp, label), lambda db: ours(db[0]), raw_side)


def drain(tmp: Path, s: Settings) -> list[Figure]:
    figures = []
    for keep, label in ((True, "archive on success (default)"), (False, "delete on success")):
        result = _rounds(
            tmp, "drain", s,
            partial(workloads.drain, count=s.jobs, concurrency=s.concurrency,
                    keep_succeeded=keep),
            lambda queue: raw.drain(queue, s.jobs, s.concurrency),
        )
        figures.append(throughput(BACKEND, f"drain {s.jobs:,} no-op jobs, {label}", result, 0.5))
    return figures


def enqueue(tmp: Path, s: Settings) -> list[Figure]:
    result = _rounds(tmp, "enqueue", s,
                     lambda store: workloads.enqueue_one_by_one(store, s.jobs),
                     lambda queue: raw.enqueue_one_by_one(queue, s.jobs))
    single = throughput(BACKEND, f"enqueue {s.jobs:,}, one job per transaction", result, 0.8)
    result = _rounds(tmp, "enqueue", s,
                     lambda store: workloads.enqueue_batches(store, s.jobs, s.enqueue_batch),
                     lambda queue: raw.enqueue_batches(queue, s.jobs, s.enqueue_batch))
    many = throughput(BACKEND, f"enqueue_many, {s.enqueue_batch} jobs per call", result, None)
    return [single, many]


def wakeup(tmp: Path, s: Settings) -> list[Figure]:
    ours: list[float] = []
    base: list[float] = []
    share = s.latency_samples // s.latency_rounds
    with database(tmp, "latency") as (store, factory):
        interleaved(s.latency_rounds,
                    lambda _: ours.extend(latency.bgjobs_latency(store, share)),
                    lambda _: base.extend(latency.raw_latency(factory, share)))
    return latency_figures(BACKEND, "wake-up latency (in process)", Spread.of(ours),
                           Spread.of(base), {50: 5, 99: 20})


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
