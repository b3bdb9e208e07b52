"""Soak benchmarks: does bgjobs stay flat under a large backlog and over many start/stop cycles?

    python bench/soak.py drain  [--backend sqlite|postgres|all] [--jobs 1000000]
    python bench/soak.py cycles [--backend sqlite|postgres|all] [--cycles 50]

``drain`` fills one queue with N no-op jobs, then drains it with one runtime (32 slots) and prints,
for every 10% of the backlog: the rate, the process's RSS, and the dead tuples of the hot table
(Postgres) or the WAL size (SQLite). Every job must run exactly once (checked with a bitmap of the
payload indexes). The raw-SQL baseline then drains the same backlog size on the same database with
the same deciles, so a slowdown the database itself shows is told apart from one bgjobs adds.

``cycles`` builds, starts and stops a runtime N times in one process and prints the threads, open
file descriptors and (Postgres) server connections after each tenth cycle: they must stay flat.
"""

from __future__ import annotations

import argparse
import gc
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import raw
import workloads
from common import say, section
from psycopg import sql
from raw_postgres import PostgresRawQueue
from raw_sqlite import SQLiteRawQueue

import bgjobs
from bgjobs import Job, Store

DEFAULT_URL = os.environ.get(
    "BGJOBS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DECILES = 10


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Target:
    """One throw-away database for a soak run, plus how to read its health figures."""

    backend: str
    store_factory: Callable[[], Store]
    raw_factory: raw.RawFactory
    health: Callable[[], str]  # dead tuples / WAL size, for humans
    server_connections: Callable[[], int]


@contextmanager
def target(backend: str, url: str) -> Iterator[Target]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bgjobs-soak-") as tmp:
            path = Path(tmp) / "soak.db"

            def wal() -> str:
                wal_file = path.with_name(path.name + "-wal")
                shm_file = path.with_name(path.name + "-shm")
                size = wal_file.stat().st_size if wal_file.exists() else 0
                shm = shm_file.stat().st_size if shm_file.exists() else 0
                return f"wal {size / 1e6:.1f} MB, shm {shm / 1e6:.2f} MB"

            yield Target(backend, lambda: bgjobs.sqlite(path), lambda: SQLiteRawQueue(path),
                         wal, lambda: 0)
        return
    schema = f"bgjobs_soak_{secrets.token_hex(3)}"
    schema_url = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    app_name = f"bgjobs-soak-{secrets.token_hex(3)}"  # count only this run's connections

    def dead_tuples() -> str:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables"
                " WHERE schemaname = %s AND relname IN ('bgjobs_jobs', 'bench_raw_jobs')",
                (schema,),
            ).fetchall()
            # What one claim's index walk reads: it grows with the dead entries it steps over,
            # whatever the machine's load does to the rates.
            plan = conn.execute(sql.SQL(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM {} WHERE queue = 'default'"
                " AND reserved_by IS NULL AND available_at <= now()"
                " ORDER BY priority, available_at, id LIMIT 32"
            ).format(sql.Identifier(schema, "bgjobs_jobs"))).fetchone()
        figures = [f"{name}: {live} live / {dead} dead" for name, live, dead in rows]
        if plan is not None:
            top = plan[0][0]["Plan"]
            figures.append(f"claim reads {top['Shared Hit Blocks'] + top['Shared Read Blocks']}"
                           " buffers")
        return ", ".join(figures)

    def connections() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app_name,)
            ).fetchone()
        return int(row[0]) if row else 0

    try:
        yield Target(backend, lambda: bgjobs.postgres(
                         schema_url, connect_kwargs={"application_name": app_name}),
                     lambda: PostgresRawQueue(url, schema), dead_tuples, connections)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))


class ExactlyOnce:
    """Counts runs per payload index; a second run of one index is a duplicate."""

    def __init__(self, count: int) -> None:
        self.seen = bytearray(count)
        self.done = 0
        self.duplicates = 0
        self._lock = threading.Lock()
        self.finished = threading.Event()
        self.marks: list[float] = []  # perf_counter at each decile
        self._step = max(1, count // DECILES)

    def __call__(self, job: Job) -> None:
        index = workloads.job_index(job)
        with self._lock:
            if self.seen[index]:
                self.duplicates += 1
                return
            self.seen[index] = 1
            self.done += 1
            if self.done % self._step == 0:
                self.marks.append(time.perf_counter())
            if self.done == len(self.seen):
                self.finished.set()


def decile_report(label: str, count: int, started: float, marks: list[float],
                  samples: list[str]) -> list[float]:
    step = max(1, count // DECILES)
    rates: list[float] = []
    previous = started
    for index, mark in enumerate(marks):
        rate = step / (mark - previous) if mark > previous else 0.0
        rates.append(rate)
        extra = f"  {samples[index]}" if index < len(samples) else ""
        say(f"   {label} {10 * (index + 1):3d}%: {rate:8,.0f} jobs/s{extra}")
        previous = mark
    return rates


def soak_drain(t: Target, count: int) -> None:
    with section(f"{t.backend}: drain a backlog of {count:,} jobs, per 10%"):
        store = t.store_factory()
        store.open()
        checker = ExactlyOnce(count)
        bg = workloads.build(store, concurrency=32, handler=checker, keep_succeeded=False)
        fill_started = time.perf_counter()
        workloads.fill(bg, count)
        say(f"   filled in {time.perf_counter() - fill_started:.1f} s; {t.health()}; "
            f"RSS {rss_mb():.1f} MB")
        samples: list[str] = []
        sampler_stop = threading.Event()

        def sample() -> None:
            seen = 0
            while not sampler_stop.wait(0.05):
                if len(checker.marks) > seen:
                    seen = len(checker.marks)
                    samples.append(f"RSS {rss_mb():6.1f} MB  {t.health()}")

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        bg.start()
        finished = checker.finished.wait(timeout=max(600.0, count / 200))
        bg.stop(timeout=10)
        sampler_stop.set()
        sampler.join()
        store.close()
        if not finished or checker.duplicates:
            raise SystemExit(f"bgjobs ran {checker.done} of {count} once, "
                             f"{checker.duplicates} duplicates")
        rates = decile_report("bgjobs", count, started, checker.marks, samples)
        say(f"   bgjobs: all {count:,} ran exactly once; last/first decile "
            f"{rates[-1] / rates[0]:.2f}x")
        raw_queue = t.raw_factory()
        raw_queue.reset()
        raw.fill(raw_queue, count)
        raw_marks: list[float] = []
        done = 0
        step = max(1, count // DECILES)
        raw_started = time.perf_counter()
        while True:
            rows = raw_queue.claim(32)
            if not rows:
                break
            raw_queue.delete([job_id for job_id, _ in rows])
            before = done
            done += len(rows)
            if done // step > before // step:
                raw_marks.append(time.perf_counter())
        raw_queue.close()
        if done != count:
            raise SystemExit(f"raw drain processed {done} of {count}")
        raw_rates = decile_report("raw   ", count, raw_started, raw_marks, [])
        ours = count / (checker.marks[-1] - started)
        theirs = count / (raw_marks[-1] - raw_started)
        say(f"   raw: last/first decile {raw_rates[-1] / raw_rates[0]:.2f}x; "
            f"bgjobs/raw over the whole backlog {ours / theirs:.2f}x")


def soak_cycles(t: Target, cycles: int) -> None:
    with section(f"{t.backend}: {cycles} build/start/stop cycles in one process"):
        say(f"   before: threads {threading.active_count()}, fds {open_fds()}, "
            f"server connections {t.server_connections()}")
        figures: list[tuple[int, int, int]] = []
        for cycle in range(1, cycles + 1):
            store = t.store_factory()
            bg = workloads.build(store, concurrency=4)
            bg.start()
            bg.enqueue("noop", {"i": cycle})
            bg.stop(timeout=5)
            del bg, store
            if cycle % max(1, cycles // 10) == 0:
                figure = (threading.active_count(), open_fds(), t.server_connections())
                figures.append(figure)
                say(f"   after {cycle:3d}: threads {figure[0]}, fds {figure[1]}, "
                    f"server connections {figure[2]} (no gc.collect())")
        gc.collect()
        say(f"   after gc.collect(): threads {threading.active_count()}, fds {open_fds()}, "
            f"server connections {t.server_connections()}")
        if figures and figures[-1] > figures[0]:
            say("   ! grew between the first and the last sample")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("what", choices=("drain", "cycles"))
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--postgres-url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "all" else (args.backend,)
    for backend in backends:
        with target(backend, args.postgres_url) as t:
            if args.what == "drain":
                soak_drain(t, args.jobs)
            else:
                soak_cycles(t, args.cycles)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
