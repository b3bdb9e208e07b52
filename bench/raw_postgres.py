"""The raw-SQL baseline queue on Postgres: ``FOR UPDATE SKIP LOCKED`` batch claim, batch delete,
one transaction per call, default (durable) commit settings."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql
from raw import RAW_NODE

CHANNEL = "bench_raw"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS bench_raw_jobs (
        id bigserial PRIMARY KEY,
        queue text NOT NULL,
        name text NOT NULL,
        payload jsonb NOT NULL,
        priority integer NOT NULL DEFAULT 0,
        attempt integer NOT NULL DEFAULT 0,
        available_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        reserved_by text,
        reserved_at timestamptz,
        lease_expires_at timestamptz
    )""",
    """CREATE INDEX IF NOT EXISTS bench_raw_claim
       ON bench_raw_jobs (queue, priority, available_at, id) WHERE reserved_by IS NULL""",
]

INSERT = (
    "INSERT INTO bench_raw_jobs (queue, name, payload, available_at)"
    " VALUES ('default', 'noop', %s, coalesce(to_timestamp(%s::float8 / 1e6), now()))"
)

CLAIM = (
    "UPDATE bench_raw_jobs SET reserved_by = %s, reserved_at = now(),"
    " lease_expires_at = now() + interval '30 seconds', attempt = attempt + 1"
    " WHERE id IN (SELECT id FROM bench_raw_jobs WHERE queue = 'default'"
    " AND reserved_by IS NULL AND available_at <= now()"
    " ORDER BY priority, available_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
    " RETURNING id, payload::text"
)


class PostgresRawQueue:
    """One connection; ``notify=True`` sends NOTIFY bench_raw in each insert's transaction."""

    def __init__(self, conninfo: str, schema: str, *, notify: bool = False) -> None:
        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._schema = schema
        self._notify = notify
        with self._conn.transaction():
            self._conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(schema)))
            self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))

    @property
    def connection(self) -> psycopg.Connection[tuple[object, ...]]:
        return self._conn

    def reset(self) -> None:
        with self._conn.transaction():
            for statement in SCHEMA:
                self._conn.execute(statement)
            self._conn.execute("TRUNCATE bench_raw_jobs")

    def insert_one(self, payload: str, available_us: int | None = None) -> None:
        with self._conn.transaction():
            self._conn.execute(INSERT, (payload, available_us))
            if self._notify:
                self._conn.execute(f"NOTIFY {CHANNEL}")

    def insert_many(self, payloads: Sequence[str]) -> None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(INSERT, [(p, None) for p in payloads])

    def claim(self, limit: int) -> list[tuple[int, str]]:
        with self._conn.transaction():
            rows = self._conn.execute(CLAIM, (RAW_NODE, limit)).fetchall()
        return [(int(str(r[0])), str(r[1])) for r in rows]

    def delete(self, ids: Sequence[int]) -> None:
        with self._conn.transaction():
            self._conn.execute("DELETE FROM bench_raw_jobs WHERE id = ANY(%s)", (list(ids),))

    def count(self) -> int:
        with self._conn.transaction():
            row = self._conn.execute("SELECT count(*) FROM bench_raw_jobs").fetchone()
        return int(str(row[0])) if row else 0

    def close(self) -> None:
        self._conn.close()
