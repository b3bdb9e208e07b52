"""SQLite backend: the embedded default."""

from bgjobs.adapters.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
