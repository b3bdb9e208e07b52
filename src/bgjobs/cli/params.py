"""Click parameter types for durations, JSON payloads, aware datetimes and comma lists."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from bgjobs.payload import JSON, MAX_PAYLOAD_DEPTH, lone_surrogate
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
        except OverflowError:
            self.fail(
                f"{value!r} is too long: a duration is at most {timedelta.max.days} days",
                param,
                ctx,
            )


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
                f"{value!r:.80} is not valid JSON ({exc.msg} at column {exc.colno}); quote it "
                """for the shell, e.g. --payload '{"user_id": 1}'""",
                param,
                ctx,
            )
        except RecursionError:  # what json.loads could not read, encode_payload would refuse
            self.fail(
                f"payload is nested more than {MAX_PAYLOAD_DEPTH} levels deep; flatten it, "
                "or store the document elsewhere and pass its id",
                param,
                ctx,
            )
        except ValueError:  # the only other ValueError of json.loads: the int-to-text limit
            self.fail(
                f"payload has an integer longer than {sys.get_int_max_str_digits()} digits; "
                "pass it as a string",
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


class Utf8Text(ParamType[str]):
    """Text that is valid UTF-8. Bytes in argv that are not arrive as lone surrogates, which
    no store can encode and no stored name contains."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if lone_surrogate(text) is not None:
            self.fail(
                f"{text!r} is not valid UTF-8 text; check the terminal's encoding (locale)",
                param,
                ctx,
            )
        return text


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


# Job ids and row counts: both stores hold 64-bit signed integers.
POSITIVE_BIGINT = click.IntRange(min=1, max=2**63 - 1)
DURATION = Duration()
UTF8_TEXT = Utf8Text()
JSON_VALUE = JsonValue()
AWARE_DATETIME = AwareDateTime()
