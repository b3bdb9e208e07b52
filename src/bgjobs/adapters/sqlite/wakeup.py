"""Cross-process wake-up for SQLite: ``PRAGMA data_version`` changes whenever another connection
commits, so a cheap poll of it notices new jobs far sooner than polling the jobs table.

The same thread checkpoints the WAL once a second, so that no job's commit pays for it. A
PASSIVE checkpoint alone never lets the WAL start over while writes continue (by the time it
has copied the log, more was appended), so the file and its -shm index grew without bound
(1.9 GB after a million jobs). When the log holds more than ``_RESTART_FRAMES``, a RESTART
checkpoint follows: it copies the few frames the PASSIVE one left and makes the next writer
start the log from the beginning (journal_size_limit then trims the file). It waits at most
``_CHECKPOINT_BUSY_MS`` for the current writer and readers, holding new writers back meanwhile,
and when they are not done by then it stops and the next round tries again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from bgjobs.adapters.base import WakeCallback
from bgjobs.adapters.rows import scalar

log = logging.getLogger("bgjobs")

_CHECKPOINT_EVERY = 1.0  # seconds between background WAL checkpoints
_RESTART_FRAMES = 1000  # frames (pages) in the log past which it is started over (~4 MB)
_CHECKPOINT_BUSY_MS = 20  # how long a RESTART checkpoint may hold writers back, waiting


class DataVersionWatcher:
    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        on_wake: WakeCallback,
        interval: float,
        on_stop: Callable[[], None],
    ) -> None:
        self._connect = connect
        self._on_stop = on_stop
        self._next_checkpoint = time.monotonic() + _CHECKPOINT_EVERY
        self._on_wake = on_wake
        self._interval = interval
        self._stopped = threading.Event()
        # The baseline is read before returning, so any later commit is noticed.
        self._conn: sqlite3.Connection | None = self._connect_watcher()
        self._last = self._version(self._conn)
        self._thread = threading.Thread(target=self._run, name="bgjobs-sqlite-wakeup", daemon=True)
        self._thread.start()

    def _connect_watcher(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_BUSY_MS}")  # it only waits to checkpoint
        return conn

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        return int(scalar(conn.execute("PRAGMA data_version").fetchone()))

    def _run(self) -> None:
        conn = self._conn
        last: int | None = self._last
        while not self._stopped.wait(self._interval):
            try:
                if conn is None:
                    conn = self._connect_watcher()
                version = self._version(conn)
            except sqlite3.Error:
                log.debug("bgjobs: data_version check failed; retrying", exc_info=True)
                conn = None
                continue
            if last is None or version != last:
                # After a reconnect the baseline is unknown: wake once rather than miss a job.
                self._on_wake(None)
            last = version
            if time.monotonic() >= self._next_checkpoint:
                self._next_checkpoint = time.monotonic() + _CHECKPOINT_EVERY
                try:
                    _checkpoint(conn)
                except sqlite3.Error:
                    log.debug("bgjobs: background checkpoint failed", exc_info=True)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        self._on_stop()


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database without waiting; start it over when it has grown."""
    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if frames >= _RESTART_FRAMES:
        conn.execute("PRAGMA wal_checkpoint(RESTART)")
