"""Connections for the Postgres store: a pool for queries, dedicated ones for LISTEN and migrations.

A pooled connection whose backend was terminated (server restart, ``pg_terminate_backend``, a
proxy timing out) sits idle in the pool looking fine until it is used. Before handing one out we
poll its socket (no round trip): an idle connection has nothing to read, so readable data or EOF
means the server spoke or hung up, and only then is a real probe sent. Dead connections are closed
and given back, which makes the pool replace them, so one outage never fails more than the calls
that were running during it. (psycopg_pool's own ``check`` costs a round trip per checkout and
sleeps about a second between failed checks.)

``give_up_after`` bounds every wait on the database (shutdown uses it): checkouts wait no longer
than the time left, none is given out after it, and statements still running then are cancelled.

psycopg_pool warns once for every broken connection handed back ("discarding closed
connection"): after a server restart that is a line per pooled connection. bgjobs reports the
outage itself (StoreError, QueueError events), so of those warnings about its own connections
only the first of each outage is kept.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg_pool import ConnectionPool

DEFAULT_CONNECT_TIMEOUT = 5
DEFAULT_APPLICATION_NAME = "bgjobs"
RECONNECT_TIMEOUT = 5.0
CLOSE_TIMEOUT = 5.0  # waiting for the pool's threads to end
CANCEL_TIMEOUT = 2.0  # sending a cancel request for a statement past the deadline


_OUTAGE_GAP = 30.0  # seconds without a broken connection that end an outage
_returning = threading.local()  # set while this thread hands a connection back to its pool


class _OneWarningPerOutage(logging.Filter):
    """Keeps the first of psycopg_pool's "discarding closed connection" warnings about bgjobs'
    connections per outage; others' connections are not affected."""

    def __init__(self) -> None:
        super().__init__()
        self._last = float("-inf")
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(_returning, "active", False):
            return True
        if not str(record.msg).startswith("discarding closed connection"):
            return True
        now = time.monotonic()
        with self._lock:
            first = now - self._last > _OUTAGE_GAP
            self._last = now
        return first


_POOL_WARNINGS = _OneWarningPerOutage()


def _give_back(pool: ConnectionPool[Any], conn: Connection[Any]) -> None:
    _returning.active = True
    try:
        pool.putconn(conn)
    finally:
        _returning.active = False


def connect_defaults(conninfo: str, extra: dict[str, Any]) -> dict[str, Any]:
    """psycopg.connect keyword arguments: bgjobs' defaults unless the URL or caller sets them."""
    given = {**conninfo_to_dict(conninfo), **extra}
    defaults: dict[str, Any] = {}
    if "connect_timeout" not in given:
        defaults["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    if "application_name" not in given:
        defaults["application_name"] = DEFAULT_APPLICATION_NAME
    options = str(given.get("options") or "")
    if "timezone" not in options.lower():
        # UTC sessions: psycopg then returns datetimes in datetime.UTC, nothing to convert.
        defaults["options"] = f"{options} -c TimeZone=UTC".strip()
    return {**defaults, **extra, "autocommit": True}


def pool_conninfo(pool: ConnectionPool[Any]) -> str:
    """A pool's conninfo (psycopg_pool 3.3 also allows a callable returning it)."""
    conninfo = pool.conninfo
    return conninfo() if callable(conninfo) else conninfo


def _readable(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def is_alive(conn: Connection[Any]) -> bool:
    """Cheap liveness check for an idle connection (a round trip only when in doubt)."""
    if conn.closed or conn.pgconn.status != ConnStatus.OK:
        return False
    try:
        if not _readable(conn.fileno()):
            return True
        # Something arrived while idle: a parameter change, a notice, or the server's goodbye.
        conn.execute("")
    except (psycopg.Error, OSError, ValueError):
        return False
    return conn.pgconn.status == ConnStatus.OK


class Connections:
    """The pool (created on ``open``, or the caller's) plus dedicated connections."""

    def __init__(
        self,
        source: str | ConnectionPool[Any],
        *,
        name: str,
        min_size: int,
        max_size: int,
        timeout: float,
        connect_kwargs: dict[str, Any],
    ) -> None:
        self._name = name
        self._sizes = (min_size, max_size, timeout)
        self._pool: ConnectionPool[Any] | None = None
        self._in_use: set[Connection[Any]] = set()  # checked out: cancelled at the deadline
        self._deadline: float | None = None  # time.monotonic()
        self._canceller: threading.Timer | None = None
        if isinstance(source, ConnectionPool):
            self._pool = source
            self.owned = False
            self.conninfo = pool_conninfo(source)
            kwargs = source.kwargs() if callable(source.kwargs) else source.kwargs
            self.kwargs = {**(kwargs or {}), **connect_kwargs, "autocommit": True}
        else:
            self.owned = True
            self.conninfo = source
            self.kwargs = connect_defaults(source, connect_kwargs)

    @property
    def pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            raise psycopg.InterfaceError("the bgjobs store is not open")
        return self._pool

    def open(self) -> None:
        pool_logger = logging.getLogger("psycopg.pool")
        if _POOL_WARNINGS not in pool_logger.filters:
            pool_logger.addFilter(_POOL_WARNINGS)
        if self.owned and self._pool is None:
            min_size, max_size, timeout = self._sizes
            self._pool = ConnectionPool(
                self.conninfo,
                min_size=min_size,
                max_size=max_size,
                kwargs=self.kwargs,
                timeout=timeout,
                name=self._name,
                open=False,
                # The pool retries a failed connect with doubling delays (1, 2, 4, 8 s...) for
                # this long, then gives up and lets the next caller start a fresh attempt at
                # once. Short, so that after a long outage the pool is back within ~2 s of the
                # server, not 30 s later.
                reconnect_timeout=RECONNECT_TIMEOUT,
            )
            self._pool.open(wait=False)

    def close(self) -> None:
        self.give_up_after(None)
        if self.owned and self._pool is not None:
            # Joins the pool's threads; its connections close with it.
            self._pool.close(timeout=CLOSE_TIMEOUT)
            self._pool = None

    def give_up_after(self, seconds: float | None) -> None:
        if self._canceller is not None:
            self._canceller.cancel()
            self._canceller = None
        if seconds is None:
            self._deadline = None
            return
        self._deadline = time.monotonic() + seconds
        self._canceller = threading.Timer(max(seconds, 0.0), self._cancel_in_use)
        self._canceller.name = f"{self._name}-deadline"
        self._canceller.daemon = True
        self._canceller.start()

    def _cancel_in_use(self) -> None:
        for conn in list(self._in_use):
            with suppress(Exception):  # it may have been returned (or broken) meanwhile
                conn.cancel_safe(timeout=CANCEL_TIMEOUT)

    def _checkout_timeout(self) -> float | None:
        if self._deadline is None:
            return None  # the pool's own timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise psycopg.OperationalError(
                "bgjobs gave up on the database: the time allowed to wait for it ran out"
            )
        return min(left, self._sizes[2])

    def connect(self, **overrides: Any) -> Connection[Any]:
        """A dedicated autocommit connection outside the pool (LISTEN needs its own)."""
        return psycopg.connect(self.conninfo, **{**self.kwargs, **overrides})

    @contextmanager
    def admin(self) -> Iterator[Connection[Any]]:
        """For migrations and schema checks: a direct connection when bgjobs owns the settings
        (a wrong URL or a down server then fails with libpq's own message, not a pool timeout),
        else one of the caller's pooled connections (which may depend on the pool's setup)."""
        if self.owned:
            with self.connect() as conn:
                yield conn
        else:
            with self.connection() as conn:
                yield conn

    @contextmanager
    def connection(self) -> Iterator[Connection[Any]]:
        """A live pooled connection in autocommit mode (the caller's pool may use either)."""
        pool = self.pool
        for _ in range(pool.max_size + 2):
            conn = pool.getconn(timeout=self._checkout_timeout())
            if is_alive(conn):
                break
            conn.close()  # the pool sees it closed, drops it and opens a replacement
            _give_back(pool, conn)
        else:
            raise psycopg.OperationalError("no live connection in the bgjobs pool")
        restore = not conn.autocommit
        self._in_use.add(conn)
        try:
            if restore:
                conn.autocommit = True
            yield conn
        finally:
            self._in_use.discard(conn)
            if restore and conn.info.transaction_status == TransactionStatus.IDLE:
                with suppress(psycopg.Error):
                    conn.autocommit = False
            _give_back(pool, conn)
