"""The files of a SQLite database: where it may be created, and how to read one this process
may not write.

A database in WAL mode is three files: the database, ``-wal`` and ``-shm`` next to it. Reading it
normally needs write access to the directory (to create the two side files), so a database on a
read-only mount, in a directory of another user, or a read-only file is opened read-only instead:
``mode=ro`` (sees a live writer's WAL through existing side files), else ``immutable=1`` (when the
side files cannot be created there is no live writer, whose WAL would need them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from bgjobs.errors import ConfigError

# A WAL file reset by a checkpoint is truncated back to this size (PRAGMA journal_size_limit).
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024

_READ_ONLY_MESSAGES = ("readonly database", "unable to open database file", "read-only")


def check_directory(path: Path, display_url: str, *, create: bool) -> None:
    """Refuse a database whose directory does not exist (a typo would otherwise start an empty
    database somewhere else), or create it when asked to."""
    parent = path.parent
    if create:
        parent.mkdir(parents=True, exist_ok=True)
    elif not parent.is_dir():
        raise ConfigError(
            f"the directory {parent} of the SQLite database {display_url} does not exist: check "
            f"the path, or create the directory first (mkdir -p {parent}), or pass "
            "bgjobs.sqlite(path, create_dirs=True)"
        )


def is_read_only_error(exc: sqlite3.Error) -> bool:
    return any(message in str(exc) for message in _READ_ONLY_MESSAGES)


def is_read_only_write(exc: BaseException) -> bool:
    """Whether a write failed because the database file may only be read."""
    return isinstance(exc, sqlite3.OperationalError) and "readonly database" in str(exc)


def read_only_error(path: Path) -> sqlite3.OperationalError:
    return sqlite3.OperationalError(
        f"cannot write to {path}: this process may only read it (the file or its directory "
        f"{path.parent} is not writable, and SQLite's WAL mode also writes {path.name}-wal and "
        f"{path.name}-shm there). Reading commands (status, jobs list/show) work; for anything "
        "else give this user write access to the file and its directory."
    )


def connect_read_only(path: Path, text_factory: Callable[[bytes], str]) -> sqlite3.Connection:
    """A read-only connection to a database this process cannot write."""
    uri = path.resolve().as_uri()
    failure: sqlite3.Error | None = None
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, check_same_thread=False)
        conn.text_factory = text_factory
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error as exc:
            conn.close()
            failure = exc
    raise sqlite3.OperationalError(
        f"cannot open {path} even read-only ({failure}): check that this user may read the "
        f"file and its directory {path.parent}"
    ) from failure
