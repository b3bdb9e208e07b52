"""The child side of the multi-process benchmarks (started by procs.py, not by hand).

    proc_worker.py bgjobs-drain URL CONCURRENCY    start with claims held; "ready"; on "go" drain
                                                   until SIGTERM, then print "ran FIRST LAST I ..."
    proc_worker.py bgjobs-latency URL              "ready", print "i epoch" as each job starts
    proc_worker.py raw-drain CONNINFO SCHEMA BATCH "ready"; on "go" drain until empty, then
                                                   print "ran FIRST LAST I ..."
    proc_worker.py raw-latency CONNINFO SCHEMA     LISTEN; print "i epoch" as each job starts

FIRST is when the first claim that found jobs began, LAST when the last job's completion
committed (epoch seconds, "-" if none), and the I's are the payload indexes of every job run.
"""

from __future__ import annotations

import json
import select
import sys
import threading
import time

import workloads
from raw_postgres import CHANNEL, PostgresRawQueue

import bgjobs
from bgjobs import Event, Job
from bgjobs.events import JobSucceeded, RuntimeStarted


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _ready_on_start(event: Event) -> None:
    if isinstance(event, RuntimeStarted):
        _say("ready")


def _report(first: float | None, last: float | None, runs: list[int]) -> None:
    def when(at: float | None) -> str:
        return "-" if at is None else f"{at:.6f}"

    _say(" ".join(["ran", when(first), when(last), *map(str, runs)]))


def bgjobs_drain(url: str, concurrency: int) -> None:
    runs: list[int] = []
    last: list[float] = []
    gated = workloads.GatedStore(bgjobs.open_store(url), clock=time.time)

    def listener(event: Event) -> None:
        _ready_on_start(event)
        if isinstance(event, JobSucceeded):
            last[:] = [time.time()]

    def handler(job: Job) -> None:
        runs.append(workloads.job_index(job))

    def go_on_signal() -> None:
        sys.stdin.readline()  # "go", or EOF if the parent died: drain either way
        gated.go()

    bg = workloads.build(gated.as_store(), concurrency=concurrency, handler=handler,
                         listener=listener)
    threading.Thread(target=go_on_signal, daemon=True).start()
    bg.run()
    _report(gated.first_claim, last[0] if last else None, runs)


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
    runs: list[int] = []
    first = last = None
    while True:
        started = time.time()
        rows = queue.claim(batch)
        if not rows:
            break
        first = first or started
        for _, payload in rows:
            runs.append(json.loads(payload)["i"])
        queue.delete([job_id for job_id, _ in rows])
        last = time.time()
    _report(first, last, runs)


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
