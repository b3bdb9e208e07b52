"""The cron calendar: which naive wall-clock times an expression matches, and the first
match at or after a wall-clock time, found field by field (a field that does not match
jumps straight to its next allowed value, so no search walks minute by minute).

Day rule, as in classic Vixie/Debian cron: when the day-of-month or the day-of-week
field is *written* as the whole range (``*``, ``*/2``; see :mod:`.cron_syntax`), a day
must match both fields; when both are restricted (``1-7`` and ``mon``, even ``0-6``), a
day matching either field is enough. So ``0 0 1-7 * mon`` fires on days 1 to 7 and on
every Monday, and ``0 0 */2 * mon`` fires on Mondays that fall on an odd day of the month.

Beyond plain values, day-of-month may hold the month's last day (``L``) and day-of-week
the nth or last occurrence of a weekday in the month (``mon#2``, ``L5``).
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime

from bgjobs.errors import ScheduleError
from bgjobs.schedules.cron_fields import _DOM, _DOW, _format_field

# The Gregorian calendar, weekdays included, repeats every 400 years: a schedule with
# no match in that span never matches (compilation rejects impossible dates first).
_CYCLE_YEARS = 400

_WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th"}

LAST = -1  # the n of a weekday occurrence meaning "the last one in the month"


def _first_at_least(values: tuple[int, ...], low: int) -> int | None:
    index = bisect_left(values, low)
    return values[index] if index < len(values) else None


@dataclass(frozen=True)
class _Calendar:
    """Allowed values per field (sorted) and how the two day fields combine."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: tuple[int, ...]
    days_of_week: frozenset[int]  # 0 = Sunday .. 6 = Saturday, every week
    # True: a day must match both day fields (one is written as the whole range);
    # False: either.
    days_need_both: bool
    last_day_of_month: bool = False  # 'L' in day-of-month
    # (weekday, n): the nth such weekday of the month (mon#2); n = LAST: the last (L5).
    weekday_occurrences: frozenset[tuple[int, int]] = frozenset()
    _days_by_month_shape: dict[tuple[int, int], tuple[int, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _day_matches(self, day: int, weekday: int, length: int) -> bool:
        in_month = day in self.days_of_month or (self.last_day_of_month and day == length)
        in_week = weekday in self.days_of_week or self._is_occurrence(day, weekday, length)
        return (in_month and in_week) if self.days_need_both else (in_month or in_week)

    def _is_occurrence(self, day: int, weekday: int, length: int) -> bool:
        nth = (day + 6) // 7  # days 1-7 hold the first of each weekday, 8-14 the second...
        last = day + 7 > length
        occurrences = self.weekday_occurrences
        return (weekday, nth) in occurrences or (last and (weekday, LAST) in occurrences)

    def _first_day_at_least(self, year: int, month: int, day: int) -> int | None:
        """First matching day >= ``day`` in this month, or None."""
        # monthrange counts weekdays from Monday = 0; cron counts from Sunday = 0.
        first_weekday, length = calendar.monthrange(year, month)
        return _first_at_least(self._matching_days(length, (first_weekday + 1) % 7), day)

    def _matching_days(self, length: int, first_weekday: int) -> tuple[int, ...]:
        """The matching days of a month, which depend only on its length and the weekday
        of its 1st: 4 x 7 shapes, each worked out once."""
        key = (length, first_weekday)
        days = self._days_by_month_shape.get(key)
        if days is None:
            days = tuple(
                day
                for day in range(1, length + 1)
                if self._day_matches(day, (first_weekday + day - 1) % 7, length)
            )
            self._days_by_month_shape[key] = days  # a race only computes it twice
        return days

    def next_match(self, start: datetime) -> datetime:
        """The earliest matching wall-clock time at or after ``start`` (naive, whole
        seconds). Each step fixes one field, resetting the smaller ones to their start."""
        year, month, day = start.year, start.month, start.day
        hour, minute, second = start.hour, start.minute, start.second
        last_year = min(year + _CYCLE_YEARS, 9999)
        while year <= last_year:
            if month > 12 or month not in self.months:
                next_month = _first_at_least(self.months, month)
                if next_month is None:
                    year, next_month = year + 1, self.months[0]
                month, day, hour, minute, second = next_month, 1, 0, 0, 0
                continue
            found_day = self._first_day_at_least(year, month, day)
            if found_day is None:
                month, day, hour, minute, second = month + 1, 1, 0, 0, 0
                continue
            if found_day != day:
                day, hour, minute, second = found_day, 0, 0, 0
            found_hour = _first_at_least(self.hours, hour)
            if found_hour is None:
                day, hour, minute, second = day + 1, 0, 0, 0
                continue
            if found_hour != hour:
                hour, minute, second = found_hour, 0, 0
            found_minute = _first_at_least(self.minutes, minute)
            if found_minute is None:
                hour, minute, second = hour + 1, 0, 0
                continue
            if found_minute != minute:
                minute, second = found_minute, 0
            found_second = _first_at_least(self.seconds, second)
            if found_second is None:
                minute, second = minute + 1, 0
                continue
            return datetime(year, month, day, hour, minute, found_second)
        raise ScheduleError(f"cron schedule has no fire time after {start.isoformat()}")

    def describe_days(self) -> str:
        """Which days match, in words: ``day-of-month 1-7 OR Monday``."""
        every_day_of_month = self.days_of_month == _DOM.full
        every_weekday = self.days_of_week == _DOW.full
        month_parts = (
            [_format_field(self.days_of_month, _DOM, star=False)] if self.days_of_month else []
        )
        if self.last_day_of_month:
            month_parts.append("last")
        month_days = "day-of-month " + ",".join(month_parts)
        weekday_parts = [_weekday_names(self.days_of_week)] if self.days_of_week else []
        # By weekday, then 1st..5th, then last.
        occurrences = sorted(self.weekday_occurrences, key=lambda o: (o[0], o[1] == LAST, o[1]))
        weekday_parts += [_occurrence_name(weekday, nth) for weekday, nth in occurrences]
        weekdays = ", ".join(weekday_parts)
        combined = f"({weekdays})" if "," in weekdays else weekdays
        if not self.days_need_both:
            return f"{month_days} OR {combined}"
        if every_day_of_month and every_weekday:
            return "every day"
        if every_day_of_month:
            return weekdays
        if every_weekday:
            return month_days
        return f"{month_days} AND {combined} (a day field starts with '*', so both must match)"


def _occurrence_name(weekday: int, nth: int) -> str:
    """``2nd Monday``, ``last Friday``."""
    return f"{'last' if nth == LAST else _ORDINALS[nth]} {_WEEKDAY_NAMES[weekday]}"


def _weekday_names(values: frozenset[int]) -> str:
    """``Monday-Friday``, ``Sunday, Saturday``: runs of three or more become ranges."""
    ordered = sorted(values)
    parts: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{_WEEKDAY_NAMES[ordered[start]]}-{_WEEKDAY_NAMES[ordered[end]]}")
        else:
            parts.extend(_WEEKDAY_NAMES[v] for v in ordered[start : end + 1])
        start = end + 1
    return ", ".join(parts)
