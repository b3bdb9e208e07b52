"""A bgjobs node in its own OS process, for multi-process tests.

    python -m tests.support.node URL MODE [options]

MODE drain: one queue "work" whose handler records each job it runs.
MODE tick:  an every-second scheduled job "tick" that records each occurrence it runs.
MODE deploy: one queue "work" with the workers named by --workers (a rolling deploy's old or new
            code); each records its runs under its own name.
MODE cancel: queue "work" with handlers that run until cancelled: "coop" (watches
            job.cancelled), "blocking" (sleeps in C) and "async" (awaits); records each
            JobStarted ("started") and JobCancelled ("cancelled") with the wall-clock time.
Prints "ready" once started; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from tests.support import results

import bgjobs
from bgjobs.events import Event, JobCancelled, JobStarted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("mode", choices=["drain", "tick", "slow", "mixed", "deploy", "cancel"])
    parser.add_argument("--enqueue", type=int, default=0, help="jobs this node enqueues itself")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--missed", default="coalesce")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--node-timeout", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--workers", default="work", help="deploy mode: comma-separated names")
    parser.add_argument("--unknown-worker-timeout", type=float, default=None)
    args = parser.parse_args()

    local = threading.local()
    node = f"pid{os.getpid()}"

    def conn() -> object:
        if not hasattr(local, "conn"):
            local.conn = results.connect(args.url)
        return local.conn

    def record(job: bgjobs.Job) -> None:
        if args.sleep:
            time.sleep(args.sleep)
        due = job.scheduled_at
        due_us = int(due.timestamp() * 1_000_000)
        kind = job.name if args.mode == "deploy" else args.mode
        results.record(conn(), kind, job.id, due_us, node)

    spec = (
        bgjobs.new(bgjobs.open_store(args.url))
        .with_heartbeat(args.heartbeat, args.node_timeout)
        .with_shutdown_grace(args.grace)
    )
    if args.unknown_worker_timeout is not None:
        spec = spec.with_unknown_worker_timeout(args.unknown_worker_timeout)
    if args.mode == "deploy":
        spec = spec.with_queue(
            bgjobs.queue("work")
            .with_poll_interval(timedelta(seconds=args.poll))
            .with_workers([bgjobs.worker(name, record) for name in args.workers.split(",")])
        )
    elif args.mode == "cancel":
        spec = with_cancellable_workers(spec, conn, node)
    elif args.mode in ("drain", "slow", "mixed"):
        spec = spec.with_queue(
            bgjobs.queue("work")
            .with_max_concurrent_jobs(args.concurrency)
            .with_poll_interval(timedelta(seconds=args.poll))
            .with_worker(bgjobs.worker("work", record))
        )
    else:
        spec = spec.with_scheduled_job(
            bgjobs.scheduled_job(
                bgjobs.worker("tick", record), bgjobs.every(seconds=1)
            ).with_missed_runs(args.missed)
        )
    bg = spec.build()
    # Handlers first: a signal that arrives right after "ready" must drain, not kill.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    bg.start()
    if args.enqueue:
        # Enqueue one job per transaction while draining, to contend for the write lock.
        threading.Thread(
            target=lambda: [bg.enqueue("work", {"from": node}) for _ in range(args.enqueue)],
            daemon=True,
        ).start()
    print("ready", flush=True)
    while not stop.wait(0.1):
        pass
    bg.stop()
    sys.exit(0)


def with_cancellable_workers(
    spec: bgjobs.BgJobsSpec, conn: Callable[[], object], node: str
) -> bgjobs.BgJobsSpec:
    def coop(job: bgjobs.Job) -> None:
        while not job.cancelled:
            time.sleep(0.005)

    def blocking(job: bgjobs.Job) -> None:
        time.sleep(60)

    async def waiting(job: bgjobs.Job) -> None:
        await asyncio.sleep(60)

    def record(event: Event) -> None:
        if isinstance(event, JobStarted | JobCancelled):
            kind = "started" if isinstance(event, JobStarted) else "cancelled"
            results.record(conn(), kind, event.job.id, time.time_ns() // 1000, node)

    return spec.with_event_listener(record).with_queue(
        bgjobs.queue("work")
        .with_max_concurrent_jobs(5)
        .with_worker(bgjobs.worker("coop", coop))
        .with_worker(bgjobs.worker("blocking", blocking))
        .with_worker(bgjobs.worker("async", waiting))
    )


if __name__ == "__main__":
    main()
