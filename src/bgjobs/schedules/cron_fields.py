"""Cron fields: the six field specs (ranges and names) and formatting a value set back
into canonical compact text. croniter parses field text (see :mod:`.cron_syntax`)."""

from __future__ import annotations

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
