"""Postgres benchmarks: drain, enqueue, drain scaling over 1/2/4 processes, cross-process NOTIFY
wake-up latency, and the scheduler-skew lane. Each round gets its own schema
(``?schema=bgjobs_bench_<random>``), dropped afterwards; the raw baseline lives in that schema.
See rounds.py for the order of the sides.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import raw
import skew
import workloads
from common import Figure, Settings, section
from figures import absolute, throughput
from figures import latency as latency_figures
from procs import bgjobs_drain_scaling, cross_process_latency, raw_drain_scaling
from psycopg import sql
from raw_postgres import PostgresRawQueue
from rounds import interleaved, paired
from stats import Spread

import bgjobs
from bgjobs import Store

BACKEND = "postgres"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
MIN_DRAIN_RATE = 5_000.0
PROCESS_COUNTS = (1, 2, 4)


@dataclass(frozen=True)
class Database:
    """One throw-away schema: a bgjobs store on it and the raw baseline's connection details."""

    store: Store
    url: str  # with ?schema=, for bgjobs child processes
    conninfo: str  # without it, for psycopg
    schema: str

    def raw_queue(self, *, notify: bool = False) -> PostgresRawQueue:
        return PostgresRawQueue(self.conninfo, self.schema, notify=notify)

    def raw_factory(self) -> raw.RawFactory:
        return lambda: self.raw_queue()


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@contextmanager
def database(url: str, label: str) -> Iterator[Database]:
    schema = f"bgjobs_bench_{label}_{secrets.token_hex(3)}"
    schema_url = _with_schema(url, schema)
    store = bgjobs.postgres(schema_url)
    try:
        store.open()
        yield Database(store, schema_url, url, schema)
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))


def problem(url: str) -> str | None:
    """None if both the server and bgjobs' Postgres adapter work, else why not."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"Postgres at {url} is not reachable ({exc})"
    try:
        with database(url, "probe") as db:
            bg = workloads.build(db.store)
            bg.enqueue("noop", {"i": 0})
            db.store.queue_stats(timedelta(0))
    except Exception as exc:
        return f"bgjobs' Postgres adapter is not usable yet ({type(exc).__name__}: {exc})"
    return None


def _raw_side(measure: Callable[[raw.RawQueue], float]) -> Callable[[Database], float]:
    """The raw side of a round: ``measure`` on its own connection to the round's schema."""

    def run(db: Database) -> float:
        queue = db.raw_queue()
        try:
            return measure(queue)
        finally:
            queue.close()

    return run


def drain(url: str, s: Settings) -> list[Figure]:
    result = paired(
        s.rounds, lambda: database(url, "drain"),
        lambda db: workloads.drain(db.store, s.jobs, s.concurrency, keep_succeeded=True),
        _raw_side(lambda queue: raw.drain(queue, s.jobs, s.concurrency)),
    )
    name = f"drain {s.jobs:,} no-op jobs"
    return [throughput(BACKEND, f"{name}, archive on success (default)", result, 0.5),
            absolute(BACKEND, f"{name}, absolute", result.ours, MIN_DRAIN_RATE)]


def enqueue(url: str, s: Settings) -> list[Figure]:
    count = s.jobs // 2  # every commit waits for the WAL flush: keep the run short
    single = paired(s.rounds, lambda: database(url, "enqueue"),
                    lambda db: workloads.enqueue_one_by_one(db.store, count),
                    _raw_side(lambda queue: raw.enqueue_one_by_one(queue, count)))
    many = paired(s.rounds, lambda: database(url, "enqueue"),
                  lambda db: workloads.enqueue_batches(db.store, s.jobs, s.enqueue_batch),
                  _raw_side(lambda queue: raw.enqueue_batches(queue, s.jobs, s.enqueue_batch)))
    return [throughput(BACKEND, f"enqueue {count:,}, one job per transaction", single, 0.8),
            throughput(BACKEND, f"enqueue_many, {s.enqueue_batch} jobs per call", many, None)]


def _bgjobs_scaling(s: Settings, processes: int) -> Callable[[Database], float]:
    return lambda db: bgjobs_drain_scaling(db.store, db.url, s.jobs, processes, s.concurrency)


def _raw_scaling(s: Settings, processes: int) -> Callable[[Database], float]:
    def run(db: Database) -> float:
        queue = db.raw_queue()
        try:
            queue.reset()
            raw.fill(queue, s.jobs)
        finally:
            queue.close()
        return raw_drain_scaling(db.conninfo, db.schema, s.jobs, processes, s.concurrency)

    return run


def scaling(url: str, s: Settings) -> list[Figure]:
    figures = []
    for processes in PROCESS_COUNTS:
        result = paired(s.rounds, lambda: database(url, "scale"),
                        _bgjobs_scaling(s, processes), _raw_scaling(s, processes))
        plural = "es" if processes > 1 else ""
        name = f"drain {s.jobs:,} jobs, {processes} process{plural}"
        figures.append(throughput(BACKEND, name, result, None))
    return figures


def notify_latency(url: str, s: Settings) -> list[Figure]:
    ours: list[float] = []
    base: list[float] = []
    share = s.latency_samples // s.latency_rounds
    with database(url, "notify") as db:
        bg = workloads.build(db.store, name="latency")

        def bgjobs_side(_: int) -> None:
            ours.extend(cross_process_latency(
                "bgjobs NOTIFY wake-up latency", ["bgjobs-latency", db.url],
                lambda i: bg.enqueue("latency", {"i": i}), share))

        def raw_side(_: int) -> None:
            producer = db.raw_queue(notify=True)
            producer.reset()
            try:
                base.extend(cross_process_latency(
                    "raw NOTIFY wake-up latency", ["raw-latency", db.conninfo, db.schema],
                    lambda i: producer.insert_one(f'{{"i": {i}}}'), share))
            finally:
                producer.close()

        interleaved(s.latency_rounds, bgjobs_side, raw_side)
    return latency_figures(BACKEND, "wake-up latency (NOTIFY, other process)",
                           Spread.of(ours), Spread.of(base))


@contextmanager
def skew_lane(url: str) -> Iterator[skew.Lane]:
    with database(url, "skew") as db:
        yield skew.Lane(BACKEND, db.store, db.raw_factory())


def run(s: Settings, url: str) -> list[Figure]:
    """Every Postgres benchmark but the skew lane; call only when ``problem(url)`` is None."""
    figures: list[Figure] = []
    with section(f"Postgres drain ({s.jobs:,} jobs, max_concurrent_jobs={s.concurrency})"):
        figures += drain(url, s)
    with section("Postgres enqueue"):
        figures += enqueue(url, s)
    with section(f"Postgres drain scaling over {', '.join(map(str, PROCESS_COUNTS))} processes"):
        figures += scaling(url, s)
    with section(f"Postgres cross-process wake-up latency ({s.latency_samples} jobs)"):
        figures += notify_latency(url, s)
    return figures
