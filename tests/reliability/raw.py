"""Writing rows with another tool than bgjobs: plain SQL on the test's database."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.support import results


def execute(url: str, statement: str, *params: Any) -> None:
    """Run ``statement`` (``?`` placeholders) on the database behind ``url``, outside bgjobs."""
    conn = results.connect(url)
    try:
        if not isinstance(conn, sqlite3.Connection):
            statement = statement.replace("?", "%s")
        conn.execute(statement, params)
    finally:
        conn.close()
