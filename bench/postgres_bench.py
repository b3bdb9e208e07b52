"""Postgres benchmarks: drain, enqueue, drain scaling over 1/2/4 processes, cross-process NOTIFY
wake-up latency, and the scheduler-skew lane. Each measurement gets its own schema
(``?schema=bgjobs_bench_<random>``), dropped afterwards; the raw baseline lives in that schema.
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
from common import Figure, Settings, say, section, throughput
from common import latency as latency_figures
from procs import bgjobs_drain_scaling, cross_process_latency, raw_drain_scaling
from psycopg import sql
from raw_postgres import PostgresRawQueue

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


def drain(url: str, s: Settings) -> list[Figure]:
    with database(url, "drain") as db:
        queue = db.raw_queue()
        try:
            base = raw.drain(queue, s.jobs, s.concurrency)
        finally:
            queue.close()
        ours = workloads.drain(db.store, s.jobs, s.concurrency, keep_succeeded=True)
    figure = throughput(BACKEND, f"drain {s.jobs:,} no-op jobs, archive on success (default)",
                        ours, base, 0.5)
    floor = Figure(BACKEND, f"drain {s.jobs:,} no-op jobs, absolute", "jobs/s", ours, None, True,
                   f">= {MIN_DRAIN_RATE:,.0f} jobs/s", ours >= MIN_DRAIN_RATE)
    say(f"   absolute target >= {MIN_DRAIN_RATE:,.0f} jobs/s: "
        f"{'MET' if floor.met else 'MISSED'}")
    return [figure, floor]


def enqueue(url: str, s: Settings) -> list[Figure]:
    count = s.jobs // 2  # every commit waits for the WAL flush: keep the run short
    figures = []
    runs: list[tuple[str, Callable[[Store], float], Callable[[raw.RawQueue], float],
                     float | None]] = [
        (f"enqueue {count:,}, one job per transaction",
         lambda store: workloads.enqueue_one_by_one(store, count),
         lambda queue: raw.enqueue_one_by_one(queue, count), 0.8),
        (f"enqueue_many, {s.enqueue_batch} jobs per call",
         lambda store: workloads.enqueue_batches(store, s.jobs, s.enqueue_batch),
         lambda queue: raw.enqueue_batches(queue, s.jobs, s.enqueue_batch), None),
    ]
    for name, ours_run, raw_run, minimum in runs:
        with database(url, "enqueue") as db:
            queue = db.raw_queue()
            try:
                base = raw_run(queue)
            finally:
                queue.close()
            ours = ours_run(db.store)
        figures.append(throughput(BACKEND, name, ours, base, minimum))
    return figures


def scaling(url: str, s: Settings) -> list[Figure]:
    figures = []
    for processes in PROCESS_COUNTS:
        with database(url, f"scale{processes}") as db:
            queue = db.raw_queue()
            try:
                queue.reset()
                raw.fill(queue, s.jobs)
            finally:
                queue.close()
            base = raw_drain_scaling(db.conninfo, db.schema, s.jobs, processes, s.concurrency)
            ours = bgjobs_drain_scaling(db.store, db.url, s.jobs, processes, s.concurrency)
        plural = "es" if processes > 1 else ""
        name = f"drain {s.jobs:,} jobs, {processes} process{plural}"
        figures.append(throughput(BACKEND, name, ours, base, None))
    return figures


def notify_latency(url: str, s: Settings) -> list[Figure]:
    with database(url, "notify") as db:
        producer = db.raw_queue(notify=True)
        producer.reset()
        try:
            base = cross_process_latency(
                ["raw-latency", db.conninfo, db.schema],
                lambda i: producer.insert_one(f'{{"i": {i}}}'), s.latency_samples)
        finally:
            producer.close()
        bg = workloads.build(db.store, name="latency")

        def enqueue(i: int) -> None:
            bg.enqueue("latency", {"i": i})

        ours = cross_process_latency(["bgjobs-latency", db.url], enqueue, s.latency_samples)
    return latency_figures(BACKEND, "wake-up latency (NOTIFY, other process)", ours, base)


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
