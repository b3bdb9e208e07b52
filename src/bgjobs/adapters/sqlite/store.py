"""The SQLite Store: one file, WAL mode, any number of threads and processes.

This module is transport and lifecycle only: connecting, migrating, the three connection scopes
``SharedStore`` runs its operations in, and wake-up. The statements are in ``queries``, bound to
a cursor by ``SQLiteExecutor``; the operations themselves are shared with Postgres.

Writes take ``BEGIN IMMEDIATE`` so that two processes never deadlock upgrading a read to a write.
A writer waits for the lock in short slices of SQLite's busy handler, re-checking in between how
long it may still wait: the busy timeout, or less once ``give_up_after`` set a deadline (shutdown),
so that no write waits past it whatever holds the database.

A database this process may not write (a read-only file or directory) is opened read-only, so
that reading commands work; a write then fails saying why. Text that is not valid UTF-8 (written
by another tool) is read with U+FFFD in its place rather than failing every read of its table.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    Applied,
    CancelCallback,
    ClaimRequest,
    Completion,
    EventCallback,
    InEventLoop,
    WakeCallback,
    Wakeup,
)
from bgjobs.adapters.decisions import check_schema_version, too_new
from bgjobs.adapters.shared_store import SharedStore
from bgjobs.adapters.sqlite import files, schema
from bgjobs.adapters.sqlite.executor import SQLiteExecutor
from bgjobs.adapters.sqlite.node_locks import LockFiles, NodeLock
from bgjobs.adapters.sqlite.rows import is_undecodable_error, now_us, read_text
from bgjobs.adapters.sqlite.wakeup import DataVersionWatcher
from bgjobs.errors import ConfigError, SchemaError
from bgjobs.job import Job

# SQLite's busy handler waits at most this long per attempt at the write lock; between attempts
# the writer checks its deadline, so it notices a shutdown deadline within one slice.
_BUSY_SLICE_MS = 100

Arg = TypeVar("Arg")
Result = TypeVar("Result")


class SQLiteStore(SharedStore):
    """Store on one SQLite file. ``path=":memory:"`` uses a private temporary file instead (kept
    until the store is garbage-collected), since the wake-up watcher needs a second connection.

    The file's directory must exist (a mistyped path must not silently start an empty
    database elsewhere); ``create_dirs=True`` creates it."""

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
        create_dirs: bool = False,
    ) -> None:
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        if str(path) == ":memory:":
            self._temp_dir = tempfile.TemporaryDirectory(prefix="bgjobs-")
            path = Path(self._temp_dir.name) / "bgjobs.db"
            # Removed with the store, not by close(): a closed store opens again on its next use.
            weakref.finalize(self, self._temp_dir.cleanup)
        self.path = Path(path)
        self.display_url = f"sqlite:///{self.path}"
        self._auto_migrate = migrate
        self._busy_ms = int(busy_timeout.total_seconds() * 1000)
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._wakeup_interval = wakeup_interval.total_seconds()
        self._create_dirs = create_dirs
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._read_only = False
        self._checked = False
        self._deadline: float | None = None  # time.monotonic(): no write waits past it
        self._node_locks = LockFiles(self.path)

    # lifecycle ---------------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A new connection with bgjobs' pragmas (also used by the wake-up watcher)."""
        files.check_directory(self.path, self.display_url, create=self._create_dirs)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=_BUSY_SLICE_MS / 1000
        )
        conn.text_factory = read_text
        # The text a row reads as (read_text), for matching a name another tool stored as bytes
        # that are not UTF-8 (discarding such jobs as unserved).
        conn.create_function(
            "bgjobs_text",
            1,
            lambda raw: read_text(raw) if isinstance(raw, bytes) else raw,
            deterministic=True,
        )
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        # A WAL file reset by a checkpoint is cut back to this size (see wakeup.py).
        conn.execute(f"PRAGMA journal_size_limit = {files.JOURNAL_SIZE_LIMIT}")
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
                self._conn = self._open_connection()
            return self._conn

    def _open_connection(self) -> sqlite3.Connection:
        try:
            conn = self.connect()
            try:
                # Switching to WAL needs the database to itself: wait the whole busy timeout.
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                sqlite_utils.Database(conn).enable_wal()
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_SLICE_MS}")
            except BaseException:
                conn.close()
                raise
            self._read_only = False
            return conn
        except sqlite3.OperationalError as exc:
            if not files.is_read_only_error(exc) or not self.path.exists():
                raise
        # Not writable here: readers can still read it (``status``, ``jobs list``).
        self._read_only = True
        return files.connect_read_only(self.path, read_text)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._checked = False
            self._deadline = None

    def give_up_after(self, seconds: float | None) -> None:
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def upkeep(self) -> None:
        """Nothing: deleted rows leave no dead versions behind, and the WAL checkpoints run
        with the wake-up watcher."""

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
            if self._read_only:
                raise files.read_only_error(self.path)
            self._begin(conn)
            cursor = conn.cursor()
            try:
                yield SQLiteExecutor(cursor, now_us(), self._node_locks)
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if files.is_read_only_write(exc):  # a read-only file in a writable directory
                    raise files.read_only_error(self.path) from exc
                raise
            else:
                conn.execute("COMMIT")
            finally:
                cursor.close()

    def _begin(self, conn: sqlite3.Connection) -> None:
        """Take the write lock, waiting up to the busy timeout or the deadline, if sooner. The
        loop also covers the rare "database is locked" SQLite reports without waiting."""
        started = time.monotonic()
        give_up = started + self._busy_ms / 1000
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                deadline = self._deadline
                now = time.monotonic()
                if now >= (give_up if deadline is None else min(give_up, deadline)):
                    raise sqlite3.OperationalError(
                        f"database is locked: another connection held the write lock of "
                        f"{self.path} for the {now - started:.1f}s this write could wait"
                    ) from exc
                time.sleep(0.002)

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

    # the hot path decodes text at C speed ------------------------------------------------------
    def claim(self, request: ClaimRequest) -> list[Job]:
        return self._strict_text(super().claim, request)

    def complete(self, completions: Sequence[Completion]) -> list[Applied]:
        return self._strict_text(super().complete, completions)

    def _strict_text(self, operation: Callable[[Arg], Result], arg: Arg) -> Result:
        """Run ``operation`` decoding text with SQLite's own strict (fast) decoder. Text that is
        not valid UTF-8 fails that attempt, which rolls back; it then runs again with the lenient
        decoder, so the bad row fails alone (its payload raises PayloadError) and the rest run."""
        with self._lock:
            conn = self._connection()
            conn.text_factory = str
            try:
                return operation(arg)
            except sqlite3.OperationalError as exc:
                if not is_undecodable_error(exc):
                    raise
            finally:
                conn.text_factory = read_text
            return operation(arg)

    @contextmanager
    def _caller(self, conn: object) -> Iterator[SQLiteExecutor]:
        """The caller's connection to this store's file, in the caller's transaction."""
        checked = self._callers_connection(conn)
        cursor = checked.cursor()
        cursor.row_factory = None  # rows by position, whatever the caller's factory
        try:
            yield SQLiteExecutor(cursor, now_us())
        finally:
            cursor.close()

    def _callers_connection(self, conn: object) -> sqlite3.Connection:
        if isinstance(conn, sqlite_utils.Database):
            conn = conn.conn
        if isinstance(conn, InEventLoop):
            raise ConfigError(
                "aenqueue/acancel take conn= only on Postgres (a psycopg.AsyncConnection); "
                "on SQLite call enqueue(..., conn=...) in the thread that owns the connection"
            )
        if not isinstance(conn, sqlite3.Connection):
            raise ConfigError(
                "conn= must be a sqlite3.Connection or a sqlite_utils.Database on the store's "
                f"file {self.path}, got {type(conn).__name__}"
            )
        cursor = conn.cursor()
        cursor.row_factory = None
        try:
            files = {row[1]: row[2] for row in cursor.execute("PRAGMA database_list")}
            main = files.get("main") or ""
            if not (main and self.path.exists() and os.path.samefile(main, self.path)):
                raise ConfigError(
                    f"conn= is a connection to {main or 'an in-memory database'}, not to this "
                    f"store's file {self.path}: a job can be written in your transaction only "
                    "when both live in one database file"
                )
            if not conn.in_transaction:
                raise ConfigError(
                    "conn= is not inside a transaction, so the job would be committed at "
                    "once: bgjobs writes in your transaction and never begins or commits one. "
                    "Begin it first (`conn.execute('BEGIN')`, or run your own INSERT/UPDATE "
                    "in it), then commit"
                )
            if not self._checked:
                # Checked through the caller's connection: opening bgjobs' own now would wait
                # for the write lock the caller's transaction may hold.
                self._check_schema_through(cursor)
        finally:
            cursor.close()
        return conn

    def _check_schema_through(self, cursor: sqlite3.Cursor) -> None:
        table = schema.VERSION_TABLE
        found = cursor.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        version = 0
        if found is not None:
            version = int(cursor.execute(f"SELECT max(version) FROM {table}").fetchone()[0] or 0)
        if version != SCHEMA_VERSION:
            raise SchemaError(
                f"the bgjobs schema in {self.path} is at version {version}, this bgjobs needs "
                f"{SCHEMA_VERSION}: migrate it before writing in your own transaction (run "
                f"`bgjobs migrate --database {self.display_url}`, or open the store at start-up: "
                "bg.store.open())"
            )

    # liveness ----------------------------------------------------------------------------------
    def hold_node_lock(self, node_id: str) -> NodeLock:
        return self._node_locks.hold(node_id)

    # wake-up -----------------------------------------------------------------------------------
    def start_wakeup(
        self,
        on_wake: WakeCallback,
        on_channel: EventCallback,
        on_cancel: CancelCallback | None = None,
    ) -> Wakeup:
        # While a runtime runs, the watcher checkpoints the WAL in the background, so no job's
        # commit pays for a checkpoint (they cost 10-20 ms and showed up as latency spikes).
        with self._lock:
            self._connection().execute("PRAGMA wal_autocheckpoint = 0")

        def changed(queue: str | None) -> None:
            # Any commit may have been a cancel request: SQLite cannot say which ids.
            on_wake(queue)
            if on_cancel is not None:
                on_cancel(None)

        return DataVersionWatcher(
            self.connect, changed, self._wakeup_interval, on_stop=self._restore_autocheckpoint
        )

    def _restore_autocheckpoint(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.execute("PRAGMA wal_autocheckpoint = 1000")
