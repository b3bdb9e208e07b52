"""Cross-process wake-up for SQLite: ``PRAGMA data_version`` changes whenever another connection
commits, so a cheap poll of it notices new jobs far sooner than polling the jobs table."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

from bgjobs.adapters.base import WakeCallback

log = logging.getLogger("bgjobs")


class DataVersionWatcher:
    def __init__(
        self, connect: Callable[[], sqlite3.Connection], on_wake: WakeCallback, interval: float
    ) -> None:
        self._connect = connect
        self._on_wake = on_wake
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bgjobs-sqlite-wakeup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        last: int | None = None
        while not self._stopped.wait(self._interval):
            try:
                if conn is None:
                    conn = self._connect()
                version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                log.debug("bgjobs: data_version check failed; retrying", exc_info=True)
                conn = None
                continue
            if last is not None and version != last:
                self._on_wake(None)
            last = version
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
