"""Start, watch and restart crash_node processes for the recovery and poison-pill tests."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.procs import start_node, stop_node


def start(url: str, mode: str, *extra: str) -> subprocess.Popen[str]:
    """A crash_node process, returned once it printed "ready"."""
    return start_node(url, mode, *extra, module="tests.reliability.crash_node")


def node_name(proc: subprocess.Popen[str]) -> str:
    """How crash_node names itself in the results table."""
    return f"pid{proc.pid}"


class Fleet:
    """Nodes that are restarted when they die (the way a process manager would)."""

    def __init__(self, url: str, mode: str, count: int, *extra: str) -> None:
        self._args = (url, mode, *extra)
        self.procs = [start(*self._args) for _ in range(count)]
        self.restarts = 0

    def revive(self) -> None:
        for index, proc in enumerate(self.procs):
            if proc.poll() is not None:
                with contextlib.suppress(Exception):
                    proc.communicate(timeout=1)
                self.procs[index] = start(*self._args)
                self.restarts += 1

    def stop(self) -> None:
        for proc in self.procs:
            stop_node(proc)


@contextmanager
def fleet(url: str, mode: str, count: int, *extra: str) -> Iterator[Fleet]:
    nodes = Fleet(url, mode, count, *extra)
    try:
        yield nodes
    finally:
        nodes.stop()


@contextmanager
def stopped(proc: subprocess.Popen[str]) -> Iterator[None]:
    """SIGSTOP a node for the block (a hung process: alive, holding its locks, doing nothing),
    then kill it."""
    proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGCONT)
        stop_node(proc, signal.SIGKILL)
