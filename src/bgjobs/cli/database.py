"""The --database option of the management commands and opening the store it names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from bgjobs.adapters.base import Store
from bgjobs.adapters.urls import ENV_VAR, open_store
from bgjobs.cli.output import CliError

F = TypeVar("F", bound=Callable[..., Any])


def database_option(command: F) -> F:
    option = click.option(
        "--database",
        "database_url",
        envvar=ENV_VAR,
        show_envvar=True,
        metavar="URL",
        help="sqlite:///path/to/file.db or postgresql://user@host:5432/dbname.",
    )
    return option(command)


def require_url(url: str | None) -> str:
    if not url:
        raise click.UsageError(
            f"no database given: pass --database URL or set {ENV_VAR} "
            "(e.g. sqlite:///app.db or postgresql://user@localhost/app)"
        )
    return url


@contextmanager
def connected(url: str | None, *, migrate: bool = False, check: bool = True) -> Iterator[Store]:
    """An open store for ``url``. With ``migrate=False`` an old or missing schema raises
    bgjobs' SchemaError, which tells the user to run `bgjobs migrate`. ``check=False`` opens
    even then (for `migrate --status`)."""
    store = open_store(require_url(url), migrate=migrate)
    try:
        if not migrate:
            _refuse_missing_file(store)
        _open(store, check=check)
        yield store
    finally:
        store.close()


def _open(store: Store, *, check: bool) -> None:
    from bgjobs.errors import SchemaError

    try:
        store.open()
    except SchemaError:
        if check:
            raise


def _refuse_missing_file(store: Store) -> None:
    """SQLite creates a missing file on connect; a typo in a path should not leave one behind."""
    if not store.exists():
        raise CliError(
            f"no database at {store.display_url}: check the path, or create it with "
            f"`bgjobs migrate --database {store.display_url}`"
        )


def migrate_database(url: str) -> tuple[tuple[int, int] | None, int, str]:
    """Migrate; return ((from, to) or None when already current, the version, the URL shown)."""
    store = open_store(url, migrate=True)
    try:
        migrated = store.open()
        return migrated, store.schema_version(), store.display_url
    finally:
        store.close()
