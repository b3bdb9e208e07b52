"""Cross-process wake-up for SQLite: ``PRAGMA data_version`` changes whenever another connection
commits, so a cheap poll of it notices new jobs far sooner than polling the jobs table."""

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
        self._conn: sqlite3.Connection | None = connect()
        self._last = self._version(self._conn)
        self._thread = threading.Thread(target=self._run, name="bgjobs-sqlite-wakeup", daemon=True)
        self._thread.start()

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        return int(scalar(conn.execute("PRAGMA data_version").fetchone()))

    def _run(self) -> None:
        conn = self._conn
        last: int | None = self._last
        while not self._stopped.wait(self._interval):
            try:
                if conn is None:
                    conn = self._connect()
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
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    log.debug("bgjobs: background checkpoint failed", exc_info=True)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        self._on_stop()
