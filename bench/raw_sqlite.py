"""The raw-SQL baseline queue on SQLite: WAL, synchronous=NORMAL, BEGIN IMMEDIATE writes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from raw import RAW_NODE

LEASE_US = 30_000_000

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS bench_raw_jobs (
        id INTEGER PRIMARY KEY,
        queue TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        attempt INTEGER NOT NULL DEFAULT 0,
        available_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        reserved_by TEXT,
        reserved_at INTEGER,
        lease_expires_at INTEGER
    )""",
    """CREATE INDEX IF NOT EXISTS bench_raw_claim
       ON bench_raw_jobs (queue, priority, available_at, id) WHERE reserved_by IS NULL""",
]

INSERT = ("INSERT INTO bench_raw_jobs (queue, name, payload, available_at, created_at)"
          " VALUES ('default', 'noop', ?, ?, ?)")

CLAIM = (
    "UPDATE {table} SET reserved_by = ?, reserved_at = ?, lease_expires_at = ?,"
    " attempt = attempt + 1"
    " WHERE id IN (SELECT id FROM {table}{hint} WHERE queue = 'default'"
    " AND reserved_by IS NULL AND available_at <= ?"
    " ORDER BY priority, available_at, id LIMIT ?)"
    " RETURNING id, payload"
)


def _now_us() -> int:
    return time.time_ns() // 1000


class SQLiteRawQueue:
    """The baseline queue. ``table``/``index`` let the breakdown run the same claim and delete
    against bgjobs' own table (filled by bgjobs; ``reset`` and inserts then do not apply)."""

    def __init__(
        self, path: Path, synchronous: str = "NORMAL", *,
        table: str = "bench_raw_jobs", index: str | None = None,
    ) -> None:
        self._table = table
        self._claim = CLAIM.format(table=table, hint=f" INDEXED BY {index}" if index else "")
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {synchronous}")
        self._conn.execute("PRAGMA busy_timeout = 30000")

    def reset(self) -> None:
        for statement in SCHEMA:
            self._conn.execute(statement)
        self._conn.execute("DELETE FROM bench_raw_jobs")

    def insert_one(self, payload: str, available_us: int | None = None) -> None:
        now = _now_us()
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute(INSERT, (payload, available_us or now, now))
        self._conn.execute("COMMIT")

    def insert_many(self, payloads: Sequence[str]) -> None:
        now = _now_us()
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.executemany(INSERT, [(p, now, now) for p in payloads])
        self._conn.execute("COMMIT")

    def claim(self, limit: int) -> list[tuple[int, str]]:
        now = _now_us()
        self._conn.execute("BEGIN IMMEDIATE")
        params = (RAW_NODE, now, now + LEASE_US, now, limit)
        rows = self._conn.execute(self._claim, params).fetchall()
        self._conn.execute("COMMIT")
        return [(int(r[0]), str(r[1])) for r in rows]

    def delete(self, ids: Sequence[int]) -> None:
        marks = ",".join("?" * len(ids))
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute(f"DELETE FROM {self._table} WHERE id IN ({marks})", tuple(ids))
        self._conn.execute("COMMIT")

    def count(self) -> int:
        return int(self._conn.execute(f"SELECT count(*) FROM {self._table}").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
