"""The caller's own connection, for enqueue and cancel inside the caller's transaction.

The executor writes with the surface of ``psycopg.Connection`` it always uses (``execute``,
``cursor(binary=...)``); here a caller's connection is checked and seen through that surface
with tuple rows, whatever row factory the caller set. An ``AsyncConnection`` (``aenqueue``)
is driven from the thread the store runs in: each statement is sent to the caller's event loop,
which is free while the caller awaits that thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import psycopg
from psycopg import Connection, Cursor, sql
from psycopg.abc import Params
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from bgjobs.adapters.base import InEventLoop
from bgjobs.errors import ConfigError, RuntimeStateError

Query = str | bytes | sql.SQL | sql.Composed  # what the executor sends


def caller_connection(conn: object, dbname: str | None) -> Connection[Any]:
    """``conn`` checked (a psycopg connection to ``dbname`` inside a transaction), as the
    executor's connection."""
    loop = None
    if isinstance(conn, InEventLoop):
        loop = conn.loop
        conn = conn.conn
    if isinstance(conn, psycopg.AsyncConnection):
        if loop is None:
            raise ConfigError(
                "conn= is a psycopg.AsyncConnection: pass it to aenqueue, aenqueue_many or "
                "acancel (await them), or give enqueue a psycopg.Connection"
            )
        _check(conn.info, conn.autocommit, dbname)
        return cast(Connection[Any], _AsyncBridge(conn, loop))
    if isinstance(conn, psycopg.Connection):
        _check(conn.info, conn.autocommit, dbname)
        return cast(Connection[Any], _TupleRows(conn))
    raise ConfigError(
        "conn= must be an open psycopg.Connection (or a psycopg.AsyncConnection with "
        f"aenqueue) to the store's database, got {type(conn).__name__}; from SQLAlchemy pass "
        "session.connection().connection.driver_connection, from Django "
        "django.db.connection.connection"
    )


def _check(info: psycopg.ConnectionInfo, autocommit: bool, dbname: str | None) -> None:
    """Inside a transaction, or not in autocommit (psycopg then opens one with the first
    statement, which stays open until the caller commits)."""
    status = info.transaction_status
    if status == TransactionStatus.INERROR:
        raise ConfigError("conn= is in a failed transaction: roll it back before enqueueing in it")
    if status == TransactionStatus.IDLE and autocommit:
        raise ConfigError(
            "conn= is in autocommit mode and not inside a transaction, so the job would be "
            "committed at once: bgjobs writes in your transaction and never begins or commits "
            "one. Open it first (`with conn.transaction():`), then commit"
        )
    if dbname and info.dbname != dbname:
        raise ConfigError(
            f"conn= is connected to database {info.dbname!r}, but the store's is {dbname!r}"
        )


class _TupleRows:
    """A caller's psycopg.Connection with tuple rows."""

    def __init__(self, conn: Connection[Any]) -> None:
        self._conn = conn

    def cursor(self, *, binary: bool = False) -> Cursor[Any]:
        return self._conn.cursor(binary=binary, row_factory=tuple_row)

    def execute(self, query: Query, params: Params | None = None) -> Cursor[Any]:
        return self.cursor().execute(query, params)


class _AsyncBridge:
    """A caller's psycopg.AsyncConnection, driven statement by statement on its event loop."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop):
        self._conn = conn
        self._loop = loop

    def cursor(self, *, binary: bool = False) -> _BridgedCursor:
        return _BridgedCursor(self, binary)

    def execute(self, query: Query, params: Params | None = None) -> _BridgedCursor:
        return self.cursor().execute(query, params)

    def run(self, query: Query, params: Params | None, binary: bool) -> tuple[list[Any], int]:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:  # waiting here would block the loop that must run it
            raise RuntimeStateError("an AsyncConnection is used only through aenqueue/acancel")

        async def statement() -> tuple[list[Any], int]:
            async with self._conn.cursor(binary=binary, row_factory=tuple_row) as cur:
                await cur.execute(query, params)
                rows = await cur.fetchall() if cur.description is not None else []
                return rows, cur.rowcount

        return asyncio.run_coroutine_threadsafe(statement(), self._loop).result()


class _BridgedCursor:
    def __init__(self, bridge: _AsyncBridge, binary: bool) -> None:
        self._bridge = bridge
        self._binary = binary
        self._rows: list[Any] = []
        self.rowcount = -1

    def execute(self, query: Query, params: Params | None = None) -> _BridgedCursor:
        self._rows, self.rowcount = self._bridge.run(query, params, self._binary)
        return self

    def fetchall(self) -> list[Any]:
        return self._rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None
