"""A bgjobs node in its own OS process, for the crash and recovery tests.

    python -m tests.reliability.crash_node URL MODE [options]

MODE work: queue "work"; each job records "start" when its handler begins and "done" when it
           ends. Payload {"sleep": seconds, "pill": true}: a pill kills its whole process
           (os._exit) after its sleep, the way a segfault or an OOM kill would.
MODE tick: an every-second scheduled job "tick" that records each occurrence it runs.
Prints "ready" once started; SIGTERM stops it gracefully. Heartbeat settings are bgjobs'
defaults unless given.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from datetime import timedelta
from typing import Any

from tests.support import results

import bgjobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("mode", choices=["work", "tick"])
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--missed", default="coalesce")
    parser.add_argument("--heartbeat", type=float, default=None)
    parser.add_argument("--node-timeout", type=float, default=None)
    args = parser.parse_args()

    local = threading.local()
    node = f"pid{os.getpid()}"

    def record(kind: str, job: bgjobs.Job) -> None:
        if not hasattr(local, "conn"):
            local.conn = results.connect(args.url)
        due_us = int(job.scheduled_at.timestamp() * 1_000_000)
        results.record(local.conn, kind, job.id, due_us, node)

    def work(job: bgjobs.Job) -> None:
        payload: Any = job.payload or {}
        record("start", job)
        time.sleep(float(payload.get("sleep", 0)))
        if payload.get("pill"):
            os._exit(3)
        record("done", job)

    spec = bgjobs.new(bgjobs.open_store(args.url))
    if args.heartbeat is not None:
        spec = spec.with_heartbeat(args.heartbeat, args.node_timeout or args.heartbeat * 6)
    if args.mode == "work":
        spec = spec.with_queue(
            bgjobs.queue("work")
            .with_max_concurrent_jobs(args.concurrency)
            .with_poll_interval(timedelta(seconds=0.2))
            .with_worker(bgjobs.worker("work", work))
        )
    else:
        spec = spec.with_scheduled_job(
            bgjobs.scheduled_job(
                bgjobs.worker("tick", lambda job: record("tick", job)), bgjobs.every(seconds=1)
            ).with_missed_runs(args.missed)
        )
    bg = spec.build()
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
