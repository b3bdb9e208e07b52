"""Where to connect and which schema to use: URL parsing, identifier checks, password masking.

Schema and channel names end up in SQL, so they are checked against a strict pattern here AND
composed with ``psycopg.sql.Identifier`` wherever they are used: never interpolated as text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bgjobs.errors import ConfigError, DatabaseURLError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_CHANNEL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,62}")
_SCHEMES = ("postgresql://", "postgres://")
_MASK = "***"
DEFAULT_SCHEMA = "public"


@dataclass(frozen=True)
class Target:
    """A parsed connection target: what libpq gets, and what humans see."""

    conninfo: str  # the bgjobs-only ``schema`` parameter removed
    schema: str
    display_url: str  # password masked


def check_schema(name: str, *, source: str = "schema argument") -> str:
    """Refuse anything but a plain identifier (and Postgres' reserved ``pg_`` prefix)."""
    if not _IDENTIFIER.fullmatch(name) or name.lower().startswith("pg_"):
        error = DatabaseURLError if source == "URL" else ConfigError
        raise error(
            f"invalid Postgres schema name {name!r} (from the {source}): use 1-63 letters, "
            "digits and underscores, starting with a letter or underscore and not with 'pg_', "
            "e.g. schema=bgjobs"
        )
    return name


def check_channel(name: str) -> str:
    if not _CHANNEL.fullmatch(name):
        raise ConfigError(
            f"invalid NOTIFY channel name {name!r}: use 1-63 letters, digits, '_' or '.', "
            "starting with a letter or underscore"
        )
    return name


def default_channel(schema: str) -> str:
    """One channel per schema, so bgjobs instances in other schemas never wake each other."""
    name = f"bgjobs.{schema}"
    if len(name) <= 63:
        return name
    return "bgjobs." + hashlib.sha1(schema.encode()).hexdigest()[:32]


def cancel_channel(channel: str) -> str:
    """The channel cancel requests for running jobs are announced on, next to ``channel``."""
    name = f"{channel}.cancel"
    if len(name) <= 63:
        return name
    return "bgjobs.cancel." + hashlib.sha1(channel.encode()).hexdigest()[:32]


def parse_target(conninfo: str, schema: str | None) -> Target:
    """Split a URL (``postgresql://...?schema=NAME``) or a libpq ``key=value`` string.

    ``schema`` given both as an argument and in the URL must agree; neither means ``public``.
    """
    text = conninfo.strip()
    url_schema: str | None = None
    if text.startswith(_SCHEMES):
        text, url_schema = _strip_schema_param(text)
    elif "://" in text:
        raise DatabaseURLError(
            f"{mask_password(text)!r} is not a Postgres URL; use "
            "postgresql://user:password@host:5432/dbname?schema=NAME"
        )
    try:
        params = conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        raise DatabaseURLError(
            f"cannot parse Postgres connection string {mask_password(conninfo)!r}: "
            f"{str(exc).strip()}. "
            "Use postgresql://user:password@host:5432/dbname?schema=NAME"
        ) from None
    for port in str(params.get("port") or "").split(","):
        # libpq would only complain when connecting; a typo deserves an error right here.
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise DatabaseURLError(
                f"Postgres connection string {mask_password(conninfo)!r} has port {port!r}; "
                "a port is a number from 1 to 65535, e.g. postgresql://user@host:5432/dbname"
            )
    if url_schema is not None:
        check_schema(url_schema, source="URL")
    if schema is not None:
        check_schema(schema)
    if url_schema is not None and schema is not None and url_schema != schema:
        raise ConfigError(
            f"schema={schema!r} disagrees with the URL's schema={url_schema!r}; give it once"
        )
    chosen = schema or url_schema or DEFAULT_SCHEMA
    display = mask_password(conninfo.strip())
    if url_schema is None and chosen != DEFAULT_SCHEMA and text.startswith(_SCHEMES):
        display += ("&" if "?" in display else "?") + f"schema={chosen}"
    return Target(conninfo=text, schema=chosen, display_url=display)


def _strip_schema_param(url: str) -> tuple[str, str | None]:
    """Remove ``schema=`` from the query, leaving every other parameter byte for byte."""
    parts = urlsplit(url)
    kept: list[str] = []
    found: list[str] = []
    for item in parts.query.split("&") if parts.query else []:
        key, _, value = item.partition("=")
        if unquote(key) == "schema":
            found.append(unquote(value))
        else:
            kept.append(item)
    if len(found) > 1:
        raise DatabaseURLError(f"the URL {mask_password(url)!r} gives schema= more than once")
    if found and not found[0]:
        raise DatabaseURLError(f"the URL {mask_password(url)!r} has an empty schema=")
    stripped = urlunsplit(parts._replace(query="&".join(kept)))
    return stripped, (found[0] if found else None)


def mask_password(conninfo: str) -> str:
    """The connection string with any password replaced by ``***``."""
    text = conninfo.strip()
    if "://" in text:
        parts = urlsplit(text)
        netloc = parts.netloc
        userinfo, at, hosts = netloc.rpartition("@")
        if at and ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{_MASK}@{hosts}"
        query = "&".join(
            f"{item.partition('=')[0]}={_MASK}"
            if unquote(item.partition("=")[0]) == "password"
            else item
            for item in (parts.query.split("&") if parts.query else [])
        )
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    try:
        params = conninfo_to_dict(text)
    except psycopg.ProgrammingError:
        return "<unparseable connection string>"
    if "password" in params:
        params["password"] = _MASK
    return make_conninfo("", **params)
