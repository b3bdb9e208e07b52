"""The parent side of the multi-process benchmarks: drain scaling over N OS processes and
cross-process wake-up latency. Children run bench/proc_worker.py and talk over stdin/stdout."""

from __future__ import annotations

import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import workloads
from common import Spread, Stopwatch

from bgjobs import Store

WORKER = str(Path(__file__).with_name("proc_worker.py"))
START_TIMEOUT = 30.0


class Child:
    """One worker process; its stdout lines arrive in ``lines``."""

    def __init__(self, args: Sequence[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, prefix: str, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self.lines.empty()):
                raise RuntimeError(f"worker {self.proc.args!r} did not say {prefix!r}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 15.0) -> None:
        """SIGTERM (a bgjobs child then stops gracefully) and wait; kill if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _left(store: Store) -> int:
    return sum(s.available + s.scheduled + s.running for s in store.queue_stats(timedelta(0)))


def bgjobs_drain_scaling(store: Store, url: str, count: int, processes: int,
                         concurrency: int) -> float:
    """Fill ``count`` jobs, then time N processes (each a runtime with ``concurrency`` slots)
    from "go" until the hot table is empty. Returns jobs per second."""
    workloads.fill(workloads.build(store), count)
    children = [Child(["bgjobs-drain", url, str(concurrency)]) for _ in range(processes)]
    try:
        for child in children:
            child.expect("ready")
        with Stopwatch() as sw:
            for child in children:
                child.send("go")
            deadline = time.monotonic() + max(120.0, count / 50)
            while _left(store) and time.monotonic() < deadline:
                time.sleep(0.02)
        if _left(store):
            raise RuntimeError("the processes did not drain the queue in time")
    finally:
        for child in children:
            child.finish()
    return count / sw.seconds


def raw_drain_scaling(conninfo: str, schema: str, count: int, processes: int,
                      batch: int) -> float:
    """N raw claim/delete loops in N processes; timed from "go" until all have exited."""
    children = [Child(["raw-drain", conninfo, schema, str(batch)]) for _ in range(processes)]
    try:
        for child in children:
            child.expect("ready")
        with Stopwatch() as sw:
            for child in children:
                child.send("go")
            done = sum(int(child.expect("done", 120.0).split()[1]) for child in children)
        if done != count:
            raise RuntimeError(f"raw processes ran {done} of {count} jobs")
    finally:
        for child in children:
            child.finish()
    return count / sw.seconds


def cross_process_latency(child_args: Sequence[str], enqueue: Callable[[int], None],
                          samples: int, warmup: int = 5) -> Spread:
    """Enqueue one job at a time here; the child prints "i epoch" as its handler starts.
    Latency = child's time.time() - ours just before the enqueue (same host, same clock)."""
    child = Child(child_args)
    rng = random.Random(7)
    values: list[float] = []
    try:
        child.expect("ready")
        for i in range(-warmup, samples):
            time.sleep(rng.uniform(0.005, 0.015))
            sent = time.time()
            enqueue(i)
            started = child.expect(f"{i} ", 5.0).split()[1]
            if i >= 0:
                values.append((float(started) - sent) * 1000)
    finally:
        child.finish()
    return Spread.of(values)
