"""Database URLs: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``postgresql://...``."""

from __future__ import annotations

from bgjobs.adapters.base import Store
from bgjobs.errors import DatabaseURLError

ENV_VAR = "BGJOBS_DATABASE_URL"


def open_store(url: str, *, migrate: bool = True) -> Store:
    """A store for ``url`` (not yet connected)."""
    text = url.strip()
    if text.startswith("sqlite://"):
        path = text[len("sqlite://") :]
        if not path.startswith("/") or path == "/":
            raise DatabaseURLError(
                f"SQLite URL {url!r} has no path; use sqlite:///relative/file.db or "
                "sqlite:////absolute/file.db"
            )
        from bgjobs.adapters.sqlite import SQLiteStore

        return SQLiteStore(path[1:] or ":memory:", migrate=migrate)
    if text.startswith(("postgresql://", "postgres://")):
        from bgjobs.adapters.postgres import PostgresStore

        return PostgresStore(text, migrate=migrate)
    if text.endswith((".db", ".sqlite", ".sqlite3")) and "://" not in text:
        from bgjobs.adapters.sqlite import SQLiteStore

        return SQLiteStore(text, migrate=migrate)
    raise DatabaseURLError(
        f"cannot tell which database {url!r} is; use sqlite:///path/to/file.db or "
        "postgresql://user@host:5432/dbname"
    )
