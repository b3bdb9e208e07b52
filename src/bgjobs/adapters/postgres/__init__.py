"""Postgres backend: many processes on many hosts share one database (one schema per instance)."""

from bgjobs.adapters.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
