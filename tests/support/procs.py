"""Start and stop bgjobs nodes as separate OS processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bgjobs

ROOT = Path(__file__).resolve().parents[2]


def start_node(
    url: str, mode: str, *extra: str, module: str = "tests.support.node"
) -> subprocess.Popen[str]:
    """A node process (``module`` is its script), returned once it printed "ready"."""
    return start_ready(module, url, mode, *extra)


def start_ready(module: str, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
    """``python -m module args...``, returned once it printed "ready" (``stdin``: piped)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"{module} did not start: {line!r} {err[-2000:]}")
    return proc


def stop_node(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    return proc.returncode


@contextmanager
def nodes(url: str, mode: str, count: int, *extra: str) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    try:
        for _ in range(count):
            started.append(start_node(url, mode, *extra))
        yield started
    finally:
        for proc in started:
            stop_node(proc)


def producer(url: str) -> bgjobs.BgJobs:
    """A runtime that only enqueues "work" jobs for the nodes above (it is never started)."""
    return (
        bgjobs.new(bgjobs.open_store(url))
        .with_queue(bgjobs.queue("work").with_worker(bgjobs.worker("work", lambda j: None)))
        .build()
    )
