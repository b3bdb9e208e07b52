"""Shared fixtures: real SQLite files in a temp dir and a real Postgres (one schema per test).

Postgres comes from BGJOBS_TEST_POSTGRES_URL (default: the local trust-auth server's `test`
database). Outside CI a missing server skips the Postgres tests; with CI=true it fails them.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bgjobs.adapters.base import Store

if TYPE_CHECKING:
    import bgjobs

PG_URL = os.environ.get("BGJOBS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

_pg_checked: dict[str, str | None] = {}


def postgres_problem() -> str | None:
    """None when Postgres is reachable, else why not."""
    if "result" not in _pg_checked:
        try:
            import psycopg

            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_checked["result"] = None
        except Exception as exc:
            _pg_checked["result"] = f"Postgres at {PG_URL} is not reachable: {exc}"
    return _pg_checked["result"]


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{problem} (CI=true: Postgres tests must run, not skip)")
    pytest.skip(problem)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty schema name; dropped afterwards."""
    require_postgres()
    import psycopg

    name = f"bgjobs_test_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def make_store(backend: str, tmp_path: Path, schema: str | None, **options: Any) -> Store:
    if backend == "sqlite":
        from bgjobs.adapters.sqlite import SQLiteStore

        return SQLiteStore(tmp_path / "jobs.db", **options)
    from bgjobs.adapters.postgres import PostgresStore

    return PostgresStore(PG_URL, schema=schema, **options)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def store_factory(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Store]]:
    """Builds stores on one shared database for this test (several = several 'nodes')."""
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    made: list[Store] = []

    def factory(**options: Any) -> Store:
        store = make_store(backend, tmp_path, schema, **options)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


@pytest.fixture
def store(store_factory: Callable[..., Store]) -> Store:
    s = store_factory()
    s.open()
    return s


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL for subprocesses and the CLI pointing at this test's database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    schema = request.getfixturevalue("pg_schema")
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={schema}"


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Wait for a condition, polling; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


class Recorder:
    """A thread-safe event listener that remembers what it saw."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def kinds(self) -> list[str]:
        with self._lock:
            return [type(e).__name__ for e in self.events]


@pytest.fixture
def started() -> Iterator[Callable[[bgjobs.BgJobs], bgjobs.BgJobs]]:
    """``started(bg)`` starts a runtime and stops it (5 s grace) when the test ends."""
    runtimes: list[bgjobs.BgJobs] = []

    def start(bg: bgjobs.BgJobs) -> bgjobs.BgJobs:
        runtimes.append(bg)
        return bg.start()

    yield start
    for bg in runtimes:
        bg.stop(timeout=5)
