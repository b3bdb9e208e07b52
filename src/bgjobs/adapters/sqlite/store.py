"""The SQLite Store: one file, WAL mode, any number of threads and processes.

This module is transport and lifecycle only: connecting, migrating, the three connection scopes
``SharedStore`` runs its operations in, and wake-up. The statements are in ``queries``, bound to
a cursor by ``SQLiteExecutor``; the operations themselves are shared with Postgres.

Writes take ``BEGIN IMMEDIATE`` so that two processes never deadlock upgrading a read to a write;
the busy timeout makes them queue instead, and a bounded retry covers the rare "database is
locked" that SQLite reports without calling the busy handler.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from bgjobs.adapters.base import SCHEMA_VERSION, EventCallback, WakeCallback, Wakeup
from bgjobs.adapters.decisions import check_schema_version, too_new
from bgjobs.adapters.shared_store import SharedStore
from bgjobs.adapters.sqlite import schema
from bgjobs.adapters.sqlite.executor import SQLiteExecutor
from bgjobs.adapters.sqlite.node_locks import LockFiles, NodeLock
from bgjobs.adapters.sqlite.rows import now_us
from bgjobs.adapters.sqlite.wakeup import DataVersionWatcher
from bgjobs.errors import SchemaError

_LOCK_RETRY_SECONDS = 60.0


class SQLiteStore(SharedStore):
    """Store on one SQLite file. ``path=":memory:"`` uses a private temporary file instead, since
    the wake-up watcher needs a second connection to the same database."""

    backend = "sqlite"
    # A live process never loses its flock: a free lock is proof enough at the first look.
    liveness_confirm = timedelta(0)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        migrate: bool = True,
        busy_timeout: timedelta = timedelta(seconds=30),
        synchronous: str = "NORMAL",
        wakeup_interval: timedelta = timedelta(milliseconds=5),
    ) -> None:
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        if str(path) == ":memory:":
            self._temp_dir = tempfile.TemporaryDirectory(prefix="bgjobs-")
            path = Path(self._temp_dir.name) / "bgjobs.db"
        self.path = Path(path)
        self.display_url = f"sqlite:///{self.path}"
        self._auto_migrate = migrate
        self._busy_ms = int(busy_timeout.total_seconds() * 1000)
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._wakeup_interval = wakeup_interval.total_seconds()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._checked = False
        self._node_locks = LockFiles(self.path)

    # lifecycle ---------------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A new connection with bgjobs' pragmas (also used by the wake-up watcher)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self._busy_ms / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def open(self) -> tuple[int, int] | None:
        with self._lock:
            if self._checked:
                return None
            if not self._auto_migrate:
                check_schema_version(self.schema_version(), str(self.path), self.display_url)
                self._checked = True
                return None
            start, end = self.migrate()
            self._checked = True
            return (start, end) if start != end else None

    def _raw_connection(self, *, create: bool = False) -> sqlite3.Connection:
        """The connection, opened without any schema check (migrate and version use it)."""
        with self._lock:
            if self._conn is None:
                if not (create or self._auto_migrate or self.path.exists()):
                    raise SchemaError(
                        f"there is no bgjobs database at {self.path}. Create it with "
                        f"`bgjobs migrate --database {self.display_url}` (or migrate=True)."
                    )
                conn = self.connect()
                sqlite_utils.Database(conn).enable_wal()
                self._conn = conn
            return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._checked = False
        if self._temp_dir is not None:
            self._temp_dir.cleanup()
            self._temp_dir = None

    def exists(self) -> bool:
        return self.path.exists()

    def monitor(self) -> tuple[SQLiteStore, bool]:
        # Its own connection: WAL readers never block the runtime's writes, and this store's
        # lock would otherwise serialise a slow status query with claims.
        return SQLiteStore(self.path, migrate=False), True

    def _connection(self) -> sqlite3.Connection:
        if not self._checked:
            self.open()
        return self._raw_connection()

    def schema_version(self) -> int:
        with self._lock:
            return schema.current_version(self._raw_connection())

    def migrate(self) -> tuple[int, int]:
        with self._write(checked=False) as tx:
            start = schema.migrate(tx.cursor, SCHEMA_VERSION, now_us())
            if start > SCHEMA_VERSION:
                raise too_new(start, str(self.path))
        if start != SCHEMA_VERSION:
            with self._lock:
                self._raw_connection().execute("PRAGMA optimize")  # fresh planner statistics
        return start, SCHEMA_VERSION

    def now(self) -> datetime:
        return datetime.now(UTC)

    # connection scopes (see SharedStore) -------------------------------------------------------
    @contextmanager
    def _write(self, *, checked: bool = True) -> Iterator[SQLiteExecutor]:
        """One IMMEDIATE transaction, serialised within the process by a lock."""
        with self._lock:
            conn = self._connection() if checked else self._raw_connection(create=True)
            deadline = time.monotonic() + _LOCK_RETRY_SECONDS
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)
            cursor = conn.cursor()
            try:
                yield SQLiteExecutor(cursor, now_us(), self._node_locks)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                cursor.close()

    # Every write takes the write lock, so one write and several are the same scope.
    _writing = _write
    _transaction = _write

    @contextmanager
    def _reading(self) -> Iterator[SQLiteExecutor]:
        """Reads outside any transaction: in WAL mode they never wait for a writer."""
        with self._lock:
            cursor = self._connection().cursor()
            try:
                yield SQLiteExecutor(cursor, now_us(), self._node_locks)
            finally:
                cursor.close()

    # liveness ----------------------------------------------------------------------------------
    def hold_node_lock(self, node_id: str) -> NodeLock:
        return self._node_locks.hold(node_id)

    # wake-up -----------------------------------------------------------------------------------
    def start_wakeup(self, on_wake: WakeCallback, on_channel: EventCallback) -> Wakeup:
        # While a runtime runs, the watcher checkpoints the WAL in the background, so no job's
        # commit pays for a checkpoint (they cost 10-20 ms and showed up as latency spikes).
        with self._lock:
            self._connection().execute("PRAGMA wal_autocheckpoint = 0")
        return DataVersionWatcher(
            self.connect, on_wake, self._wakeup_interval, on_stop=self._restore_autocheckpoint
        )

    def _restore_autocheckpoint(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.execute("PRAGMA wal_autocheckpoint = 1000")
