"""Click parameter types for durations, JSON payloads, aware datetimes and comma lists."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from bgjobs.payload import JSON
from bgjobs.schedules import parse_duration

if TYPE_CHECKING:
    from click import ParamType
else:

    class ParamType(click.ParamType):
        """Subscriptable on every click version (ParamType became generic in click 8.2+)."""

        def __class_getitem__(cls, item: object) -> type:
            return cls


class Duration(ParamType[timedelta]):
    """``30s``, ``5m``, ``1h30m``, ``7d`` (bgjobs.schedules.parse_duration)."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class JsonValue(ParamType[JSON]):
    """Any JSON document, parsed with json.loads."""

    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> JSON:
        if not isinstance(value, str):
            converted: JSON = value
            return converted
        try:
            parsed: JSON = json.loads(value)
        except json.JSONDecodeError as exc:
            self.fail(
                f"{value!r} is not valid JSON ({exc.msg} at column {exc.colno}); quote it for "
                """the shell, e.g. --payload '{"user_id": 1}'""",
                param,
                ctx,
            )
        return parsed


class AwareDateTime(ParamType[datetime]):
    """An ISO 8601 time with a UTC offset: 2025-01-31T09:00:00+01:00 or ...Z."""

    name = "iso8601"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time such as 2025-01-31T09:00:00Z", param, ctx)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(
                f"{value!r} has no time zone; add Z (UTC) or an offset such as +01:00", param, ctx
            )
        return parsed


class CommaList(ParamType[tuple[str, ...]]):
    """``a,b,c`` -> ("a", "b", "c"), optionally limited to ``choices``."""

    name = "list"

    def __init__(self, choices: tuple[str, ...] | None = None) -> None:
        self.choices = choices

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        items = tuple(part.strip() for part in str(value).split(",") if part.strip())
        if not items:
            self.fail("give at least one name, e.g. a,b", param, ctx)
        if self.choices is not None:
            wrong = [item for item in items if item not in self.choices]
            if wrong:
                self.fail(
                    f"{', '.join(map(repr, wrong))} not allowed; choose from "
                    f"{', '.join(self.choices)}",
                    param,
                    ctx,
                )
        return items


DURATION = Duration()
JSON_VALUE = JsonValue()
AWARE_DATETIME = AwareDateTime()
