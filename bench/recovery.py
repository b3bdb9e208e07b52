"""How fast the jobs of a SIGKILLed node run again elsewhere, with bgjobs' default settings.

    cd bench && ../.venv/bin/python recovery.py [--backend sqlite|postgres|all] [--jobs 20]
                                                  [--runs 3] [--sleep 0.5]

Each run: a victim node claims ``--jobs`` jobs (each sleeps ``--sleep`` seconds) and a survivor
node waits idle; the victim is SIGKILLed while every job is in its handler. Measured from the
kill: when the first rescued job starts again on the survivor, and when the last one finishes.
Every job must finish exactly once (the victim never finished any).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bgjobs

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TABLE = "recovery_results"


# the nodes ------------------------------------------------------------------------------------
def node(url: str, sleep: float) -> None:
    """A node with default heartbeat settings that records each handler's start and end."""
    local = threading.local()
    name = f"pid{os.getpid()}"

    def work(job: bgjobs.Job) -> None:
        if not hasattr(local, "conn"):
            local.conn = connect(url)
        record(local.conn, job.id, name, "start")
        time.sleep(sleep)
        record(local.conn, job.id, name, "done")

    bg = (
        bgjobs.new(bgjobs.open_store(url))
        .with_queue(
            bgjobs.queue("work").with_max_concurrent_jobs(100).with_worker(bgjobs.worker("w", work))
        )
        .build()
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bg.start()
    print("ready", flush=True)
    while not stop.wait(0.1):
        pass
    bg.stop()


def connect(url: str) -> Any:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn
    import psycopg

    base, _, query = url.partition("?")
    conn = psycopg.connect(base, autocommit=True)
    conn.execute(f'SET search_path TO "{query.removeprefix("schema=")}"')
    return conn


def record(conn: Any, job_id: int, name: str, kind: str) -> None:
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute(
        f"INSERT INTO {TABLE} (job_id, node, kind, at) VALUES ({mark}, {mark}, {mark}, {mark})",
        (job_id, name, kind, time.time()),
    )


def rows(conn: Any, kind: str) -> list[tuple[int, str, float]]:
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    found = conn.execute(f"SELECT job_id, node, at FROM {TABLE} WHERE kind = {mark}", (kind,))
    return [(int(a), str(b), float(c)) for a, b, c in found.fetchall()]


def spawn(url: str, sleep: float) -> subprocess.Popen[str]:
    here = Path(__file__).resolve()
    proc = subprocess.Popen(
        [sys.executable, str(here), "--node", url, "--sleep", str(sleep)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("a node did not start")
    return proc


# one run --------------------------------------------------------------------------------------
def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def one_run(url: str, jobs: int, sleep: float) -> tuple[float, float]:
    producer = (
        bgjobs.new(bgjobs.open_store(url))
        .with_queue(bgjobs.queue("work").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )
    producer.store.open()  # creates the database (and the Postgres schema)
    conn = connect(url)
    conn.execute(f"CREATE TABLE {TABLE} (job_id BIGINT, node TEXT, kind TEXT, at DOUBLE PRECISION)")
    ids = {job.id for job in producer.enqueue_many([("w", None)] * jobs)}
    victim = spawn(url, sleep * 1000)  # never finishes on the victim
    wait_for("the victim to start every job", lambda: len(rows(conn, "start")) == jobs, 60)
    survivor = spawn(url, sleep)
    try:
        killed = time.time()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        wait_for("every job to finish", lambda: len(rows(conn, "done")) >= jobs, 120)
        time.sleep(0.5)  # a duplicate run would show up here
        done = rows(conn, "done")
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=60)
    finished = [job_id for job_id, _, _ in done]
    if sorted(finished) != sorted(ids):
        raise RuntimeError(f"not exactly once: {len(finished)} runs of {len(ids)} jobs")
    restarted = min(at for _, who, at in rows(conn, "start") if who == f"pid{survivor.pid}")
    conn.close()
    producer.store.close()
    return restarted - killed, max(at for _, _, at in done) - killed


# the benchmark --------------------------------------------------------------------------------
def database(backend: str, postgres_url: str) -> tuple[str, Callable[[], None]]:
    if backend == "sqlite":
        folder = tempfile.TemporaryDirectory(prefix="bgjobs-recovery-")
        return f"sqlite:///{folder.name}/jobs.db", folder.cleanup
    import psycopg

    schema = f"bgjobs_recovery_{secrets.token_hex(4)}"

    def drop() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return f"{postgres_url}?schema={schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.5, help="each handler's duration (s)")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("BGJOBS_TEST_POSTGRES_URL", DEFAULT_URL)
    )
    parser.add_argument("--node", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node:
        node(args.node, args.sleep)
        return
    backends = ("sqlite", "postgres") if args.backend == "all" else (args.backend,)
    print(
        f"Recovery after SIGKILL: {args.jobs} jobs in flight, handlers of {args.sleep}s, "
        f"default heartbeat (5 s) and lease (30 s), {args.runs} runs each"
    )
    print("| backend | first rescued job restarts | last rescued job done | exactly once |")
    print("|---|---|---|---|")
    for backend in backends:
        starts, ends = [], []
        for _ in range(args.runs):
            url, cleanup = database(backend, args.postgres_url)
            try:
                start, end = one_run(url, args.jobs, args.sleep)
            finally:
                cleanup()
            starts.append(start)
            ends.append(end)
        print(
            f"| {backend} | {describe(starts)} | {describe(ends)} | yes ({args.runs} runs) |",
            flush=True,
        )


def describe(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"


if __name__ == "__main__":
    main()
