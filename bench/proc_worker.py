"""The child side of the multi-process benchmarks (started by procs.py, not by hand).

    proc_worker.py bgjobs-drain URL CONCURRENCY   "ready", wait for "go", run until SIGTERM
    proc_worker.py bgjobs-latency URL             "ready", print "i epoch" as each job starts
    proc_worker.py raw-drain CONNINFO SCHEMA BATCH  "ready", wait for "go", drain, print "done N"
    proc_worker.py raw-latency CONNINFO SCHEMA      LISTEN; print "i epoch" as each job starts
"""

from __future__ import annotations

import json
import select
import sys
import time

import workloads
from raw_postgres import CHANNEL, PostgresRawQueue

import bgjobs
from bgjobs import Event, Job
from bgjobs.events import RuntimeStarted


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _ready_on_start(event: Event) -> None:
    if isinstance(event, RuntimeStarted):
        _say("ready")


def bgjobs_drain(url: str, concurrency: int) -> None:
    bg = workloads.build(bgjobs.open_store(url), concurrency=concurrency)
    _say("ready")
    if sys.stdin.readline().strip() != "go":
        return
    bg.run()


def bgjobs_latency(url: str) -> None:
    def handler(job: Job) -> None:
        _say(f"{workloads.job_index(job)} {time.time():.6f}")

    bg = workloads.build(bgjobs.open_store(url), concurrency=10, handler=handler,
                         name="latency", listener=_ready_on_start)
    bg.run()


def raw_drain(conninfo: str, schema: str, batch: int) -> None:
    queue = PostgresRawQueue(conninfo, schema)
    _say("ready")
    if sys.stdin.readline().strip() != "go":
        return
    done = 0
    while rows := queue.claim(batch):
        for _, payload in rows:
            json.loads(payload)
        queue.delete([job_id for job_id, _ in rows])
        done += len(rows)
    _say(f"done {done}")


def raw_latency(conninfo: str, schema: str) -> None:
    """LISTEN, sleep in select() on the socket; any traffic (a NOTIFY) means: claim until empty.
    The claim's own round trip consumes the notification."""
    queue = PostgresRawQueue(conninfo, schema)
    queue.connection.execute(f"LISTEN {CHANNEL}")
    _say("ready")
    while True:
        select.select([queue.connection.fileno()], [], [], 1.0)
        while rows := queue.claim(10):
            for _, payload in rows:
                _say(f"{json.loads(payload)['i']} {time.time():.6f}")
            queue.delete([job_id for job_id, _ in rows])


def main(argv: list[str]) -> int:
    mode, *args = argv
    if mode == "bgjobs-drain":
        bgjobs_drain(args[0], int(args[1]))
    elif mode == "bgjobs-latency":
        bgjobs_latency(args[0])
    elif mode == "raw-drain":
        raw_drain(args[0], args[1], int(args[2]))
    elif mode == "raw-latency":
        raw_latency(args[0], args[1])
    else:
        raise SystemExit(f"unknown mode {mode!r}; see {__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
