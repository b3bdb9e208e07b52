"""A bgjobs node with one every-second scheduled job, in its own OS process.

    python -m tests.support.schedule_node URL [--sleep S] [--overlap skip|queue]

Its handler ("tick") records each run (job id, due time, start, end, node) in a `test_runs`
table next to the jobs, so tests can check from the outside that runs never overlapped. Prints
"ready" once started; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
import threading
import time
from typing import Any

from tests.support import results

import bgjobs

CREATE = (
    "CREATE TABLE IF NOT EXISTS test_runs (job_id BIGINT NOT NULL, due_us BIGINT NOT NULL,"
    " start_us BIGINT NOT NULL, end_us BIGINT NOT NULL, node TEXT NOT NULL)"
)


def setup(url: str) -> None:
    conn = results.connect(url)
    conn.execute(CREATE)
    conn.close()


def runs(url: str) -> list[tuple[int, int, int, int, str]]:
    """(job_id, due_us, start_us, end_us, node) of every run, by start."""
    conn = results.connect(url)
    found = conn.execute(
        "SELECT job_id, due_us, start_us, end_us, node FROM test_runs ORDER BY start_us"
    ).fetchall()
    conn.close()
    return [tuple(row) for row in found]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--overlap", default=None)
    args = parser.parse_args()
    local = threading.local()
    node = f"pid{os.getpid()}"

    def tick(job: bgjobs.Job) -> None:
        start = time.time_ns() // 1000
        if args.sleep:
            time.sleep(args.sleep)
        end = time.time_ns() // 1000
        if not hasattr(local, "conn"):
            local.conn = results.connect(args.url)
        conn: Any = local.conn
        mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
        due = int(job.scheduled_at.timestamp() * 1_000_000)
        conn.execute(
            f"INSERT INTO test_runs VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
            (job.id, due, start, end, node),
        )

    scheduled = bgjobs.scheduled_job(bgjobs.worker("tick", tick), bgjobs.every(seconds=1))
    if args.overlap:
        scheduled = scheduled.with_overlap(args.overlap)
    bg = bgjobs.new(bgjobs.open_store(args.url)).with_scheduled_job(scheduled).build()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    bg.start()
    print("ready", flush=True)
    while not stop.wait(0.1):
        pass
    bg.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
