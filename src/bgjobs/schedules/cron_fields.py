"""Cron fields: the six field specs (ranges and names), parsing one field's text into
a value set, and formatting a value set back into canonical compact text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bgjobs.errors import ScheduleError


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    # Top of the range '*' expands to; differs from `high` only for day-of-week (7 = 0).
    star_high: int
    names: Mapping[str, int]

    @property
    def full(self) -> frozenset[int]:
        return frozenset(range(self.low, self.star_high + 1))

    def check(self, value: int, source: str) -> int:
        if not self.low <= value <= self.high:
            raise ScheduleError(
                f"{source} field {self.name!r} value {value} is out of range {self.low}-{self.high}"
            )
        return value

    def fold(self, value: int) -> int:
        """Day-of-week 7 is another name for Sunday (0)."""
        return 0 if self is _DOW and value == 7 else value


_MONTH_NAMES = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_DAY_NAMES = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]


def _names(full_names: list[str], first: int) -> dict[str, int]:
    table: dict[str, int] = {}
    for i, name in enumerate(full_names, start=first):
        table[name] = i
        table[name[:3]] = i
    return table


_SECOND = _Field("second", 0, 59, 59, {})
_MINUTE = _Field("minute", 0, 59, 59, {})
_HOUR = _Field("hour", 0, 23, 23, {})
_DOM = _Field("day-of-month", 1, 31, 31, {})
_MONTH = _Field("month", 1, 12, 12, _names(_MONTH_NAMES, 1))
_DOW = _Field("day-of-week", 0, 7, 6, _names(_DAY_NAMES, 0))

# Order of a 6-field bgjobs expression (seconds first).
_FIELDS = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW)

_SYNTAX_HINT = "use numbers, names, '*', ranges 'a-b', steps '/n' and lists 'a,b'"


def _parse_value(token: str, spec: _Field, source: str) -> int:
    if token.isdigit():
        return spec.check(int(token), source)
    value = spec.names.get(token.lower())
    if value is None:
        allowed = f"{spec.low}-{spec.high}"
        if spec.names:
            allowed += " or a name like " + ", ".join(list(spec.names)[:2])
        raise ScheduleError(
            f"{source} field {spec.name!r} value {token!r} is not valid; expected {allowed}"
        )
    return value


def _parse_item(item: str, spec: _Field, source: str) -> set[int]:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ScheduleError(
                f"{source} field {spec.name!r} step {step_text!r} in {item!r} must be a "
                "whole number >= 1"
            )
        step = int(step_text)
    if base == "*":
        start, stop = spec.low, spec.star_high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, stop = _parse_value(first, spec, source), _parse_value(last, spec, source)
        if start > stop:
            raise ScheduleError(
                f"{source} field {spec.name!r} range {base!r} is reversed; ranges do not "
                f"wrap around, write it low-high or as a list"
            )
    else:
        start = _parse_value(base, spec, source)
        # "10/15" means from 10 to the end of the range, every 15 (standard cron).
        stop = spec.star_high if slash else start
    # Fold only after expanding, so "5-7" still means Friday..Sunday.
    return {spec.fold(v) for v in range(start, stop + 1, step)}


def _parse_field(text: str, spec: _Field, source: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleError(
                f"{source} field {spec.name!r} {text!r} has an empty list item; "
                "remove the extra comma"
            )
        if not re.fullmatch(r"[A-Za-z0-9*/-]+", item):
            raise ScheduleError(
                f"{source} field {spec.name!r} item {item!r} is not supported; {_SYNTAX_HINT}"
            )
        values |= _parse_item(item, spec, source)
    return frozenset(values)


def _format_field(values: frozenset[int], spec: _Field, *, star: bool = True) -> str:
    """Canonical, compact text for a value set; parsing it gives the same set back.

    ``star=False`` never starts the text with '*' (``1-31``, ``1-31/2``): a day field
    written with '*' changes how day-of-month and day-of-week combine (see
    :mod:`.cron_calendar`), so explicitly chosen days must not be written that way.
    """
    whole_range = f"{spec.low}-{spec.star_high}"
    if values == spec.full:
        return "*" if star else whole_range
    ordered = sorted(values)
    if len(ordered) > 2 and ordered[0] == spec.low:
        step = ordered[1] - ordered[0]
        if ordered == list(range(spec.low, spec.star_high + 1, step)):
            return f"*/{step}" if star else f"{whole_range}/{step}"
    items: list[str] = []
    run_start = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        if prev - run_start >= 2:
            items.append(f"{run_start}-{prev}")
        else:
            items.extend(str(v) for v in range(run_start, prev + 1))
        if value is not None:
            run_start = prev = value
    return ",".join(items)
