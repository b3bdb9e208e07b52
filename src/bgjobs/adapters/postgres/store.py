"""The Postgres Store: many processes on many hosts share one database (one schema per instance).

This module is transport and lifecycle only: the pool, migrations, the three connection scopes
``SharedStore`` runs its operations in, and LISTEN/NOTIFY wake-up. The statements are in
``queries``, bound to a connection by ``PostgresExecutor``; the operations are shared with SQLite.
Statements that must be atomic together run in one transaction; the hot paths (enqueue, claim,
complete) are single statements in autocommit, so each is one round trip and commits on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    CancelCallback,
    EventCallback,
    WakeCallback,
    Wakeup,
)
from bgjobs.adapters.decisions import check_schema_version, too_new
from bgjobs.adapters.postgres import schema as pg_schema
from bgjobs.adapters.postgres.caller import caller_connection
from bgjobs.adapters.postgres.config import (
    Target,
    cancel_channel,
    check_channel,
    default_channel,
    mask_password,
    parse_target,
)
from bgjobs.adapters.postgres.connections import Connections, pool_conninfo
from bgjobs.adapters.postgres.executor import PostgresExecutor
from bgjobs.adapters.postgres.listener import NotifyListener
from bgjobs.adapters.postgres.node_lock import AdvisoryNodeLock
from bgjobs.adapters.postgres.queries import Queries
from bgjobs.adapters.postgres.vacuum import HotTableVacuum
from bgjobs.adapters.shared_store import SharedStore
from bgjobs.errors import ConfigError


@dataclass(frozen=True)
class _PoolOptions:
    min_size: int
    max_size: int
    timeout: float
    connect_kwargs: dict[str, Any]


class PostgresStore(SharedStore):
    """Store on a Postgres database via psycopg 3.

    ``conninfo`` is a URL (``postgresql://user:pw@host:5432/db?schema=NAME``), a libpq
    ``key=value`` string, or a ``psycopg_pool.ConnectionPool`` you own (bgjobs borrows it and does
    not close it). ``schema`` (or the URL's ``schema=``) names the Postgres schema holding the
    tables, created on migrate; default ``public``. Instances in different schemas of one
    database never see each other's jobs or wake-ups. ``min_size``/``max_size``/``pool_timeout``
    size the pool bgjobs creates; ``connect_kwargs`` go to every ``psycopg.connect``.
    """

    backend = "postgres"
    # A live node can lose its lock with its connection (a server restart) and take it back
    # within a fraction of a second: a peer believes a free lock only after this long.
    liveness_confirm = timedelta(seconds=1)

    def __init__(
        self,
        conninfo: str | ConnectionPool[Any],
        *,
        schema: str | None = None,
        migrate: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 5.0,
        notify_channel: str | None = None,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(conninfo, ConnectionPool):
            target = parse_target(pool_conninfo(conninfo), schema)
            self._source: str | ConnectionPool[Any] = conninfo
        elif isinstance(conninfo, str):
            target = parse_target(conninfo, schema)
            self._source = target.conninfo
        else:
            raise ConfigError(
                "PostgresStore needs a postgresql:// URL, a libpq conninfo string or a "
                f"psycopg_pool.ConnectionPool, got {type(conninfo).__name__}"
            )
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigError(
                f"need 0 <= min_size <= max_size and max_size >= 1, "
                f"got min_size={min_size}, max_size={max_size}"
            )
        self._target: Target = target
        self.schema = target.schema
        self.display_url = target.display_url
        self.notify_channel = check_channel(notify_channel or default_channel(target.schema))
        self.cancel_channel = cancel_channel(self.notify_channel)
        dbname = conninfo_to_dict(target.conninfo).get("dbname")
        self._dbname = None if dbname is None else str(dbname)
        self._auto_migrate = migrate
        self._pool_options = _PoolOptions(
            min_size, max_size, pool_timeout, dict(connect_kwargs or {})
        )
        self._q = Queries(target.schema)
        self._lock = threading.RLock()
        self._connections: Connections | None = None
        self._vacuum: HotTableVacuum | None = None
        self._listeners: list[NotifyListener] = []
        self._node_locks: list[AdvisoryNodeLock] = []

    def __repr__(self) -> str:
        return f"PostgresStore({self.display_url!r}, schema={self.schema!r})"

    # lifecycle ---------------------------------------------------------------------------------
    def _new_connections(self) -> Connections:
        options = self._pool_options
        return Connections(
            self._source,
            name=f"bgjobs:{self.schema}",
            min_size=options.min_size,
            max_size=options.max_size,
            timeout=options.timeout,
            connect_kwargs=options.connect_kwargs,
        )

    def open(self) -> tuple[int, int] | None:
        with self._lock:
            if self._connections is not None:
                return None
            connections = self._new_connections()
            with connections.admin() as conn:
                if self._auto_migrate:
                    start = self._migrate_on(conn)
                else:
                    version = pg_schema.current_version(conn, self.schema)
                    check_schema_version(version, self._where(), self.display_url)
                    start = SCHEMA_VERSION
            connections.open()
            self._connections = connections
            self._vacuum = HotTableVacuum(connections, self._q, self.schema)
            return (start, SCHEMA_VERSION) if start != SCHEMA_VERSION else None

    def close(self) -> None:
        with self._lock:
            listeners, self._listeners = self._listeners, []
            for listener in listeners:
                listener.stop()
            if self._vacuum is not None:
                self._vacuum.close()
                self._vacuum = None
            node_locks, self._node_locks = self._node_locks, []
            for node_lock in node_locks:
                node_lock.release()
            if self._connections is not None:
                self._connections.close()
                self._connections = None

    def give_up_after(self, seconds: float | None) -> None:
        with self._lock:
            connections = self._connections
        if connections is not None:
            connections.give_up_after(seconds)

    def upkeep(self) -> None:
        vacuum = self._vacuum
        if vacuum is not None:
            vacuum.run_if_needed()

    def exists(self) -> bool:
        return True  # the server holds the database; a missing one fails to connect instead

    def monitor(self) -> tuple[PostgresStore, bool]:
        return self, False  # a pool, already safe to share

    def _conn(self) -> AbstractContextManager[Connection[Any]]:
        connections = self._connections
        if connections is None:
            self.open()
            connections = self._connections
            assert connections is not None
        return connections.connection()

    def migrate(self) -> tuple[int, int]:
        connections = self._connections or self._new_connections()
        with connections.admin() as conn:
            return self._migrate_on(conn), SCHEMA_VERSION

    def _migrate_on(self, conn: Connection[Any]) -> int:
        start = pg_schema.migrate(conn, self.schema, SCHEMA_VERSION)
        if start > SCHEMA_VERSION:
            raise too_new(start, self._where())
        return start

    def schema_version(self) -> int:
        # Without open(), which would migrate or refuse an old schema.
        connections = self._connections or self._new_connections()
        with connections.admin() as conn:
            return pg_schema.current_version(conn, self.schema)

    def _where(self) -> str:
        return f"schema {self.schema!r} of {mask_password(self._target.conninfo)}"

    def now(self) -> datetime:
        with self._reading() as tx:
            return tx.now()

    # connection scopes (see SharedStore) -------------------------------------------------------
    def _executor(self, conn: Connection[Any]) -> PostgresExecutor:
        return PostgresExecutor(
            conn, self._q, self.notify_channel, self.schema, self.cancel_channel
        )

    @contextmanager
    def _writing(self) -> Iterator[PostgresExecutor]:
        """A pooled connection in autocommit: each statement is its own transaction."""
        with self._conn() as conn:
            yield self._executor(conn)

    # Reads need no more than a pooled connection either.
    _reading = _writing

    @contextmanager
    def _transaction(self) -> Iterator[PostgresExecutor]:
        with self._conn() as conn, conn.transaction():
            yield self._executor(conn)

    @contextmanager
    def _caller(self, conn: object) -> Iterator[PostgresExecutor]:
        checked = caller_connection(conn, self._dbname)
        self.open()  # the schema is checked (or migrated) on bgjobs' own connection first
        yield self._executor(checked)

    # liveness ----------------------------------------------------------------------------------
    def hold_node_lock(self, node_id: str) -> AdvisoryNodeLock:
        if self._connections is None:
            self.open()
        connections = self._connections
        assert connections is not None
        key = pg_schema.lock_key(self.schema, f"node:{node_id}")
        node_lock = AdvisoryNodeLock(connections.connect, key)
        with self._lock:
            self._node_locks.append(node_lock)
        return node_lock

    # wake-up -----------------------------------------------------------------------------------
    def start_wakeup(
        self,
        on_wake: WakeCallback,
        on_channel: EventCallback,
        on_cancel: CancelCallback | None = None,
    ) -> Wakeup:
        if self._connections is None:
            self.open()
        connections = self._connections
        assert connections is not None
        listener = NotifyListener(
            connections.connect,
            self.notify_channel,
            on_wake,
            on_channel,
            cancels=None if on_cancel is None else (self.cancel_channel, on_cancel),
        )
        with self._lock:
            self._listeners = [x for x in self._listeners if x.alive] + [listener]
        return listener
