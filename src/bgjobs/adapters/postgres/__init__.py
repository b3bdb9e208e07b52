"""Postgres backend: many processes on many hosts share one database."""

from __future__ import annotations

from typing import Any


class PostgresStore:  # replaced by the real adapter (issue: Postgres adapter)
    backend = "postgres"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the Postgres adapter is not built yet")
