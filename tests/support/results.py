"""A results table next to the jobs, written by handlers in other processes, read by tests.

Each row is one handler call, so duplicates and gaps are visible in plain SQL.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qs, urlsplit

CREATE = (
    "CREATE TABLE IF NOT EXISTS test_results (kind TEXT NOT NULL, job_id BIGINT NOT NULL,"
    " due_us BIGINT NOT NULL, node TEXT NOT NULL)"
)


def _pg(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    schema = parse_qs(parts.query).get("schema", ["public"])[0]
    return parts._replace(query="").geturl(), schema


def connect(url: str) -> Any:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :], timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn
    import psycopg

    base, schema = _pg(url)
    conn = psycopg.connect(base, autocommit=True)
    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    conn.execute(f'SET search_path TO "{schema}"')
    return conn


def setup(url: str) -> None:
    conn = connect(url)
    conn.execute(CREATE)
    conn.close()


def record(conn: Any, kind: str, job_id: int, due_us: int, node: str) -> None:
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute(
        "INSERT INTO test_results (kind, job_id, due_us, node)"
        f" VALUES ({mark}, {mark}, {mark}, {mark})",
        (kind, job_id, due_us, node),
    )


def rows(url: str, kind: str) -> list[tuple[int, int, str]]:
    conn = connect(url)
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    found = conn.execute(
        f"SELECT job_id, due_us, node FROM test_results WHERE kind = {mark} ORDER BY due_us",
        (kind,),
    ).fetchall()
    conn.close()
    return [tuple(r) for r in found]
