"""The parent side of the multi-process benchmarks: drain scaling over N OS processes and
cross-process wake-up latency. Children run bench/proc_worker.py and talk over stdin/stdout.

Children report every job they ran, so a job run twice (in one process or in two) fails the
benchmark; drains are timed from the first claim in any child to the last completion in any
child, so process start-up and connecting are outside the clock on both sides."""

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
from common import BenchmarkFailed
from exactly_once import RunLedger
from latency import GAP_SECONDS, indexes

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
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def next_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.lines.get(timeout=0.1)
            except queue.Empty:
                if not self._reader.is_alive() and self.lines.empty():
                    raise BenchmarkFailed(f"worker {self.proc.args!r} exited "
                                          f"(code {self.proc.poll()})") from None
                if time.monotonic() > deadline:
                    raise BenchmarkFailed(f"worker {self.proc.args!r} said nothing "
                                          f"for {timeout:g} s") from None

    def expect(self, prefix: str, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(max(deadline - time.monotonic(), 0.0))
            if line.startswith(prefix):
                return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 15.0) -> None:
        """SIGTERM (a bgjobs child then stops gracefully) and wait; kill if it hangs. Every
        line it printed is in ``lines`` afterwards."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)

    def rest(self) -> list[str]:
        """Lines not read yet (call after ``finish``)."""
        left = []
        while not self.lines.empty():
            left.append(self.lines.get_nowait())
        return left


def _left(store: Store) -> int:
    return sum(s.available + s.scheduled + s.running for s in store.queue_stats(timedelta(0)))


def _drain_rate(what: str, reports: Sequence[str], count: int) -> float:
    """From each child's "ran FIRST LAST I I ..." line (times in epoch seconds, "-" if it ran
    nothing): check exactly-once over all children, then jobs/s from the earliest first claim
    to the latest last completion."""
    ledger = RunLedger(what)
    firsts: list[float] = []
    lasts: list[float] = []
    for report in reports:
        _, first, last, *runs = report.split()
        ledger.extend(int(index) for index in runs)
        if first != "-":
            firsts.append(float(first))
            lasts.append(float(last))
    ledger.check(range(count))
    return count / (max(lasts) - min(firsts))


def bgjobs_drain_scaling(store: Store, url: str, count: int, processes: int,
                         concurrency: int) -> float:
    """Fill ``count`` jobs, start N processes (each a runtime with ``concurrency`` slots whose
    claims wait for "go"), wait until all have started, say "go", wait until the hot table is
    empty, stop them and collect what they ran. Returns jobs per second."""
    workloads.fill(workloads.build(store), count)
    children = [Child(["bgjobs-drain", url, str(concurrency)]) for _ in range(processes)]
    try:
        for child in children:
            child.expect("ready")
        for child in children:
            child.send("go")
        deadline = time.monotonic() + max(120.0, count / 50)
        while _left(store) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _left(store):
            raise BenchmarkFailed(f"{processes} bgjobs processes did not drain the queue in time")
    finally:
        for child in children:
            child.finish()
    reports = [child.expect("ran", 1.0) for child in children]
    return _drain_rate(f"bgjobs drain, {processes} processes", reports, count)


def raw_drain_scaling(conninfo: str, schema: str, count: int, processes: int,
                      batch: int) -> float:
    """N raw claim/delete loops in N processes, connected before "go"; each reports what it
    ran when the table is empty. Returns jobs per second."""
    children = [Child(["raw-drain", conninfo, schema, str(batch)]) for _ in range(processes)]
    try:
        for child in children:
            child.expect("ready")
        for child in children:
            child.send("go")
        reports = [child.expect("ran", 120.0) for child in children]
    finally:
        for child in children:
            child.finish()
    return _drain_rate(f"raw drain, {processes} processes", reports, count)


def cross_process_latency(what: str, child_args: Sequence[str], enqueue: Callable[[int], object],
                          samples: int) -> list[float]:
    """Enqueue one job at a time here; the child prints "i epoch" as its handler starts.
    Latency = child's time.time() - ours just before the enqueue (same host, same clock), in ms.
    Every line the child prints counts towards the exactly-once check, late ones included."""
    child = Child(child_args)
    ledger = RunLedger(what)
    rng = random.Random(7)
    values: list[float] = []
    try:
        child.expect("ready")
        for i in indexes(samples):
            time.sleep(rng.uniform(*GAP_SECONDS))
            sent = time.time()
            enqueue(i)
            while True:
                index, started = _started(child.next_line(5.0))
                ledger.record(index)
                if index == i:
                    break
            if i >= 0:
                values.append((started - sent) * 1000)
    finally:
        child.finish()
    ledger.extend(_started(line)[0] for line in child.rest())
    ledger.check(indexes(samples))
    return values


def _started(line: str) -> tuple[int, float]:
    try:
        index, at = line.split()
        return int(index), float(at)
    except ValueError:
        raise BenchmarkFailed(f"a latency worker printed {line!r}, not 'index epoch'") from None
