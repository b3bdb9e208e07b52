"""A Postgres node's liveness lock: a session advisory lock held on a dedicated connection.

The server drops a session lock when its backend ends, and the backend ends when the client's
connection closes, which the kernel does for a process however the process dies. Peers probe the
lock (``queries.FREE_NODES``) and rescue a dead node's jobs at once instead of after its lease.

The lock lives only as long as its connection. A watcher thread notices a dropped connection
(server restart, ``pg_terminate_backend``, an idle timeout) within a fraction of a second and
takes the lock again on a new one; peers believe a free lock only after
``PostgresStore.liveness_confirm``, so a node that re-locks in time is not taken for dead.
Behind a transaction-mode pooler a session lock does not stay with its client: the watcher checks
that the lock is held by its own backend and, if not, gives up; the node is then watched by its
lease only (``key`` is None), and says why (``problem``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import Connection

from bgjobs.adapters.postgres.connections import is_alive
from bgjobs.adapters.rows import scalar

WATCH_EVERY = 0.1  # seconds between looks at the connection (no round trip)
VERIFY_EVERY = 5.0  # seconds between checks that this backend really holds the lock
RETRY_EVERY = 0.5  # seconds between attempts to take the lock back

# Waits (up to the session's lock_timeout) for a peer's probe, which holds the lock shared for
# the length of one statement.
_TAKE = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
# Whether this very backend holds the lock: a bigint advisory key shows in pg_locks as its high
# and low 32 bits (classid, objid) with objsubid 1.
_HOLDS = """
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_locks
    WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock' AND objsubid = 1
      AND pid = pg_backend_pid()
      AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
      AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, 0)
)
"""
POOLER = (
    "the lock did not stay with its connection: is a transaction-mode pooler (such as "
    "PgBouncer) between bgjobs and Postgres? Point bgjobs at Postgres directly or at a "
    "session-mode pool for recovery in seconds"
)


class AdvisoryNodeLock:
    """``Store.hold_node_lock`` for Postgres: takes the lock at once, then keeps it."""

    def __init__(self, connect: Callable[[], Connection[Any]], key: str) -> None:
        self._connect = connect
        self._key = key
        self._conn: Connection[Any] | None = None
        self._problem: str | None = "not taken yet"
        self._gave_up = False
        self._stop = threading.Event()
        self._take()
        self._thread = threading.Thread(target=self._watch, name="bgjobs-node-lock", daemon=True)
        self._thread.start()

    @property
    def key(self) -> str | None:
        return self._key if self._conn is not None else None

    @property
    def problem(self) -> str | None:
        return self._problem

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._drop(None)  # closing the connection ends the backend, and with it the lock

    # the watcher -------------------------------------------------------------------------------
    def _watch(self) -> None:
        next_verify = time.monotonic() + VERIFY_EVERY
        next_take = 0.0
        while not self._stop.wait(WATCH_EVERY):
            now = time.monotonic()
            conn = self._conn
            if conn is not None:
                if not is_alive(conn):
                    self._drop("the connection holding it was lost; taking it again")
                elif now >= next_verify:
                    next_verify = now + VERIFY_EVERY
                    self._verify(conn)
            elif not self._gave_up and now >= next_take:
                next_take = now + RETRY_EVERY
                self._take()

    def _take(self) -> None:
        conn: Connection[Any] | None = None
        try:
            conn = self._connect()
            conn.execute("SET lock_timeout = '2s'")
            conn.execute(_TAKE, (self._key,))
            holds = bool(scalar(conn.execute(_HOLDS, (self._key,)).fetchone()))
        except (psycopg.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            self._problem = f"cannot take the lock: {exc}"
            return
        if not holds:
            conn.close()
            self._gave_up = True
            self._problem = POOLER
            return
        self._conn, self._problem = conn, None

    def _verify(self, conn: Connection[Any]) -> None:
        try:
            holds = bool(scalar(conn.execute(_HOLDS, (self._key,)).fetchone()))
        except (psycopg.Error, OSError) as exc:
            self._drop(f"the connection holding it failed ({exc}); taking it again")
            return
        if not holds:
            self._gave_up = True
            self._drop(POOLER)

    def _drop(self, problem: str | None) -> None:
        conn, self._conn = self._conn, None
        if problem is not None:
            self._problem = problem
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()
