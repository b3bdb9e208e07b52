"""Schedules: when a recurring job fires.

A schedule is a pure value with two methods (see :class:`Schedule`): ``next_after``
computes the first fire time strictly after an instant, and ``describe`` returns a
canonical string the runtime stores to notice that a definition changed between deploys.
Nothing here touches a clock or a database, so every answer is deterministic.

Three kinds of schedule exist:

* :class:`Interval` (built with :func:`every`) -- a fixed period on a fixed grid,
  ``anchor + k * period``, so every node computes the same fire times.
* :class:`Cron` (built with :func:`cron`) -- a 5-field or 6-field (seconds first) cron
  expression, evaluated on the wall clock of an IANA time zone. croniter does the
  calendar maths on naive wall-clock times; this module maps wall-clock times to
  instants itself, because croniter fires a time repeated by a DST fall-back twice.
* :class:`FieldSchedule` (built with :func:`schedule`) -- an immutable fluent builder
  that compiles to a 6-field :class:`Cron`.

DST rule for cron schedules: a wall-clock time skipped by a spring-forward gap fires
once, at the first instant after the gap; a wall-clock time repeated by a fall-back
fires once, at its first occurrence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from bgjobs.errors import ScheduleError

__all__ = [
    "Cron",
    "FieldSchedule",
    "Interval",
    "Schedule",
    "cron",
    "every",
    "next_times",
    "parse_duration",
    "schedule",
]


class Schedule(Protocol):
    """What the runtime needs from any schedule."""

    def next_after(self, after: datetime) -> datetime:
        """First fire time strictly after ``after`` (tz-aware), as a tz-aware UTC datetime."""
        ...

    def describe(self) -> str:
        """Canonical definition string: equal definitions give equal strings."""
        ...


def next_times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after`` (for previews)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    times: list[datetime] = []
    current = after
    for _ in range(count):
        current = schedule.next_after(current)
        times.append(current)
    return times


def _require_aware(after: datetime) -> None:
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(
            f"next_after() needs a timezone-aware datetime, got naive {after.isoformat()}; "
            "pass e.g. datetime.now(timezone.utc)"
        )


# --------------------------------------------------------------------------- durations

_ONE_US = timedelta(microseconds=1)

# Largest first: _format_duration is greedy and parse_duration accepts the same names.
_DURATION_UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
    "us": timedelta(microseconds=1),
}

# "ms" must be tried before "m"; the lookahead stops "5mo" reading as "5m" + junk.
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)(ms|us|w|d|h|m|s)(?![A-Za-z])")


def parse_duration(text: str) -> timedelta:
    """Parse ``"500ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"7d"``, ``"1w"`` or combinations
    such as ``"1h30m"`` (spaces between parts allowed, each unit at most once).

    Raises ``ValueError`` with the accepted syntax when the text cannot be read.
    """
    hint = "use a number and a unit (w, d, h, m, s, ms, us), e.g. '30s', '5m', '1h30m'"
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty duration {text!r}; {hint}")
    total = timedelta(0)
    seen: set[str] = set()
    pos = 0
    stripped = text.strip()
    while pos < len(stripped):
        match = _DURATION_PART.match(stripped, pos)
        if match is None:
            raise ValueError(f"cannot parse duration {text!r} at {stripped[pos:]!r}; {hint}")
        number, unit = match.groups()
        if unit in seen:
            raise ValueError(f"duration {text!r} repeats unit {unit!r}; give each unit once")
        seen.add(unit)
        step = _DURATION_UNITS[unit]
        total += step * int(number) if number.isdigit() else step * float(number)
        pos = match.end()
    return total


def _format_duration(period: timedelta) -> str:
    remaining = period // _ONE_US
    parts: list[str] = []
    for unit, size in _DURATION_UNITS.items():
        count, remaining = divmod(remaining, size // _ONE_US)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


# --------------------------------------------------------------------------- intervals

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Interval:
    """Fires at ``anchor + k * period`` for every integer ``k >= 0``.

    The grid depends only on the definition, never on when a process started, so all
    nodes agree and there is no drift. The anchor is the first fire time: nothing
    fires before it (with the default epoch anchor that never matters).
    """

    period: timedelta
    anchor: datetime = _EPOCH

    def __post_init__(self) -> None:
        if not isinstance(self.period, timedelta) or self.period <= timedelta(0):
            raise ScheduleError(
                f"interval 'period' must be a positive timedelta, got {self.period!r}; "
                "use e.g. every(minutes=5)"
            )
        if not isinstance(self.anchor, datetime) or self.anchor.utcoffset() is None:
            raise ScheduleError(
                f"interval 'anchor' must be a timezone-aware datetime, got {self.anchor!r}; "
                "add tzinfo=timezone.utc"
            )
        # Normalised so describe() and equality do not depend on the zone it was given in.
        object.__setattr__(self, "anchor", self.anchor.astimezone(UTC))

    def next_after(self, after: datetime) -> datetime:
        _require_aware(after)
        # Integer microseconds: float division would drift for long periods and far dates.
        elapsed = (after - self.anchor) // _ONE_US
        if elapsed < 0:
            return self.anchor
        k = elapsed // (self.period // _ONE_US) + 1
        return self.anchor + self.period * k

    def describe(self) -> str:
        text = f"every {_format_duration(self.period)}"
        if self.anchor != _EPOCH:
            text += f" start={self.anchor.isoformat()}"
        return text


def every(
    *,
    milliseconds: float = 0,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    days: float = 0,
    weeks: float = 0,
    start: datetime | None = None,
) -> Interval:
    """An :class:`Interval` whose period is the sum of the parts, e.g. ``every(minutes=5)``.

    ``start`` is the anchor (first fire time and phase of the grid); default 1970-01-01 UTC.
    """
    parts = {
        "milliseconds": milliseconds,
        "seconds": seconds,
        "minutes": minutes,
        "hours": hours,
        "days": days,
        "weeks": weeks,
    }
    for name, value in parts.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScheduleError(f"every(): {name}={value!r} must be a number")
        if not math.isfinite(value) or value < 0:
            raise ScheduleError(
                f"every(): {name}={value!r} must be a finite number >= 0; periods only go forward"
            )
    try:
        period = timedelta(**parts)
    except OverflowError as exc:
        raise ScheduleError(f"every(): period {parts} is too large for a timedelta") from exc
    if period <= timedelta(0):
        raise ScheduleError(
            "every() needs a positive period (at least 1 microsecond); pass e.g. every(minutes=5)"
        )
    if start is None:
        return Interval(period)
    if not isinstance(start, datetime) or start.utcoffset() is None:
        raise ScheduleError(
            f"every(): 'start' must be a timezone-aware datetime, got {start!r}; "
            "add tzinfo=timezone.utc"
        )
    return Interval(period, start)


# --------------------------------------------------------------------------- cron fields


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

_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

# February counts 29: a Feb-29 schedule is rare but valid (it fires in leap years).
_MAX_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}

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


def _format_field(values: frozenset[int], spec: _Field) -> str:
    """Canonical, compact text for a value set; parsing it gives the same set back."""
    if values == spec.full:
        return "*"
    ordered = sorted(values)
    if len(ordered) > 2 and ordered[0] == spec.low:
        step = ordered[1] - ordered[0]
        if ordered == list(range(spec.low, spec.star_high + 1, step)):
            return f"*/{step}"
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


def _zone(tz: str, source: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ScheduleError(
            f"{source} time zone {tz!r} is unknown; use an IANA name such as "
            "'UTC', 'Europe/Paris' or 'America/New_York'"
        ) from exc


@dataclass(frozen=True)
class _Compiled:
    fields: tuple[frozenset[int], ...]  # in _FIELDS order
    zone: ZoneInfo
    # croniter's 6-field order puts seconds last; we always hand it 6 fields.
    croniter_expression: str


def _compile(expression: str, tz: str) -> _Compiled:
    if not isinstance(expression, str):
        raise ScheduleError(f"cron expression must be a string, got {expression!r}")
    if not isinstance(tz, str):
        raise ScheduleError(f"cron 'tz' must be a string such as 'UTC', got {tz!r}")
    source = f"cron expression {expression!r}:"
    text = expression.strip().lower()
    if text.startswith("@"):
        if text not in _ALIASES:
            raise ScheduleError(
                f"{source} unknown alias {text!r}; use one of {', '.join(_ALIASES)}"
            )
        text = _ALIASES[text]
    parts = text.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    elif len(parts) != 6:
        raise ScheduleError(
            f"cron expression {expression!r} has {len(parts)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week) or 6 (with seconds first)"
        )
    fields = tuple(
        _parse_field(part, spec, source) for part, spec in zip(parts, _FIELDS, strict=True)
    )
    seconds, minutes, hours, doms, months, dows = fields
    # With day-of-week unrestricted only day-of-month decides, so a day that exists in
    # none of the months (Feb 30, Apr 31) would make croniter search 50 years and fail.
    if dows == _DOW.full and not any(d <= _MAX_DAYS[m] for d in doms for m in months):
        raise ScheduleError(
            f"{source} can never fire: field 'day-of-month' ({_format_field(doms, _DOM)}) "
            f"never occurs in field 'month' ({_format_field(months, _MONTH)}); pick days "
            "that exist in those months"
        )
    zone = _zone(tz, f"cron {expression!r}:")
    # Full sets become '*' so croniter applies the day-of-month/day-of-week OR rule only
    # when both fields are really restricted; other sets are plain sorted lists.
    croniter_order = (minutes, hours, doms, months, dows, seconds)
    specs = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW, _SECOND)
    croniter_expression = " ".join(
        "*" if values == spec.full else ",".join(map(str, sorted(values)))
        for values, spec in zip(croniter_order, specs, strict=True)
    )
    return _Compiled(fields, zone, croniter_expression)


# --------------------------------------------------------------------------- DST mapping


def _offset_at(zone: ZoneInfo, timestamp: int) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, zone).utcoffset()


def _transition(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """First instant in (lo, hi] whose UTC offset differs from lo's (tz transitions
    fall on whole seconds, so bisection over integer timestamps is exact)."""
    lo_ts, hi_ts = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    before = _offset_at(zone, lo_ts)
    while hi_ts - lo_ts > 1:
        mid = (lo_ts + hi_ts) // 2
        if _offset_at(zone, mid) == before:
            lo_ts = mid
        else:
            hi_ts = mid
    return datetime.fromtimestamp(hi_ts, UTC)


def _resolve(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Map a naive wall-clock match to (fire instant in UTC, wall time to resume from).

    The resume point lets the caller skip every other wall time that maps to the same
    instant or earlier, instead of walking a gap or a repeated hour second by second.
    """
    early = wall.replace(tzinfo=zone, fold=0)
    late = wall.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC), wall
    early_utc, late_utc = early.astimezone(UTC), late.astimezone(UTC)
    lo, hi = min(early_utc, late_utc), max(early_utc, late_utc)
    switch = _transition(zone, lo, hi)
    if early_utc.astimezone(zone).replace(tzinfo=None) != wall:
        # Spring-forward gap: the time never shows on the clock; fire at the end of the gap.
        gap_end = switch.astimezone(zone).replace(tzinfo=None, fold=0)
        return switch, gap_end - _ONE_US
    # Fall-back: fire at the first occurrence only; resume after the repeated stretch,
    # which ends (in wall-clock terms) at the transition plus the pre-transition offset.
    old_offset = early.utcoffset()
    assert old_offset is not None  # ZoneInfo always gives an offset
    repeat_end = switch.replace(tzinfo=None) + old_offset
    return early_utc, repeat_end - _ONE_US


# --------------------------------------------------------------------------- cron


@dataclass(frozen=True)
class Cron:
    """A cron expression evaluated on the wall clock of ``tz``.

    5 fields: ``minute hour day-of-month month day-of-week``; 6 fields: ``second`` first.
    Also ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``,
    ``@yearly`` (``@annually``). Validated when constructed.
    """

    expression: str
    tz: str = "UTC"
    _compiled: _Compiled = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", _compile(self.expression, self.tz))

    def next_after(self, after: datetime) -> datetime:
        _require_aware(after)
        compiled = self._compiled
        # Every wall time at or before `after`'s wall clock maps to an instant <= `after`
        # (the wall-clock -> instant mapping is monotonic), so searching from there is safe.
        resume = after.astimezone(compiled.zone).replace(tzinfo=None, fold=0)
        while True:
            try:
                wall = croniter(compiled.croniter_expression, resume).get_next(datetime)
            except CroniterBadDateError as exc:  # pragma: no cover - prevented by _compile
                raise ScheduleError(
                    f"cron {self.expression!r} has no fire time after {after.isoformat()}"
                ) from exc
            fire, skip_to = _resolve(wall, compiled.zone)
            if fire > after:
                return fire
            resume = max(skip_to, wall)

    def describe(self) -> str:
        return f"cron {' '.join(self.expression.lower().split())!r} tz={self.tz}"


def cron(expression: str, tz: str = "UTC") -> Cron:
    """A validated :class:`Cron`; raises :class:`ScheduleError` naming the bad field."""
    return Cron(expression, tz)


# --------------------------------------------------------------------------- builder

_Value = int | str


def _builder_value(spec: _Field, value: _Value) -> int:
    return spec.fold(_builder_raw(spec, value))


def _builder_raw(spec: _Field, value: _Value) -> int:
    source = "schedule()"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ScheduleError(f"{source} field {spec.name!r} value {value!r} must be an int")
    if isinstance(value, str):
        if value.lower() not in spec.names:
            raise ScheduleError(
                f"{source} field {spec.name!r} value {value!r} is not a known name; "
                f"use a number {spec.low}-{spec.high}"
                + (" or a name like " + ", ".join(list(spec.names)[:2]) if spec.names else "")
            )
        return spec.names[value.lower()]
    return spec.check(value, source)


def _builder_range(spec: _Field, first: _Value, last: _Value) -> set[int]:
    start, stop = _builder_raw(spec, first), _builder_raw(spec, last)
    if start > stop:
        raise ScheduleError(
            f"schedule() field {spec.name!r} range {first!r}..{last!r} is reversed; "
            "ranges do not wrap around, pass the lower value first"
        )
    return {spec.fold(v) for v in range(start, stop + 1)}


def _builder_step(spec: _Field, step: int) -> set[int]:
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= spec.high:
        raise ScheduleError(
            f"schedule() field {spec.name!r} step {step!r} must be an int 1-{spec.high}"
        )
    return set(range(spec.low, spec.star_high + 1, step))


_BUILDER_FIELDS = ("seconds", "minutes", "hours", "days_of_month", "months", "days_of_week")


@dataclass(frozen=True)
class FieldSchedule:
    """Immutable fluent builder; every method returns a new FieldSchedule.

    Repeated calls on the same field ADD values (``on_hour(9).on_hour(17)`` fires at 9
    and 17). Ranges are inclusive. Unset fields smaller than the smallest set field
    take their lowest value, larger ones are ``*``: ``on_minute(10)`` is
    ``0 10 * * * *``. An empty ``schedule()`` fires every second. Day-of-week
    defaults to ``*`` (never narrowed implicitly); 0 and 7 are both Sunday.
    """

    seconds: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()
    days_of_month: tuple[int, ...] = ()
    months: tuple[int, ...] = ()
    days_of_week: tuple[int, ...] = ()
    tz: str = "UTC"

    def __post_init__(self) -> None:
        # Direct construction gets the same checks as the fluent methods.
        for name, spec in zip(_BUILDER_FIELDS, _FIELDS, strict=True):
            values = getattr(self, name)
            if isinstance(values, str | int) or not isinstance(values, Iterable):
                raise ScheduleError(f"schedule() field {spec.name!r} must be a tuple of ints")
            normal = tuple(sorted({_builder_value(spec, v) for v in values}))
            object.__setattr__(self, name, normal)
        _zone(self.tz, "schedule()")

    def _add(self, name: str, values: Iterable[int]) -> FieldSchedule:
        changes: dict[str, Any] = {name: tuple(sorted(set(getattr(self, name)) | set(values)))}
        return replace(self, **changes)

    def _add_list(self, name: str, spec: _Field, values: Iterable[_Value]) -> FieldSchedule:
        if isinstance(values, str | int):
            raise ScheduleError(
                f"schedule() field {spec.name!r} expects a list of values, got {values!r}"
            )
        items = [_builder_value(spec, v) for v in values]
        if not items:
            raise ScheduleError(f"schedule() field {spec.name!r} got an empty list")
        return self._add(name, items)

    # seconds
    def on_second(self, second: int) -> FieldSchedule:
        return self._add("seconds", [_builder_value(_SECOND, second)])

    def on_seconds(self, seconds: Iterable[int]) -> FieldSchedule:
        return self._add_list("seconds", _SECOND, seconds)

    def between_seconds(self, first: int, last: int) -> FieldSchedule:
        return self._add("seconds", _builder_range(_SECOND, first, last))

    def every_second(self, step: int) -> FieldSchedule:
        """Seconds 0, step, 2*step, ... of each minute (cron ``*/step``)."""
        return self._add("seconds", _builder_step(_SECOND, step))

    # minutes
    def on_minute(self, minute: int) -> FieldSchedule:
        return self._add("minutes", [_builder_value(_MINUTE, minute)])

    def on_minutes(self, minutes: Iterable[int]) -> FieldSchedule:
        return self._add_list("minutes", _MINUTE, minutes)

    def between_minutes(self, first: int, last: int) -> FieldSchedule:
        return self._add("minutes", _builder_range(_MINUTE, first, last))

    def every_minute(self, step: int) -> FieldSchedule:
        """Minutes 0, step, 2*step, ... of each hour (cron ``*/step``)."""
        return self._add("minutes", _builder_step(_MINUTE, step))

    # hours
    def on_hour(self, hour: int) -> FieldSchedule:
        return self._add("hours", [_builder_value(_HOUR, hour)])

    def on_hours(self, hours: Iterable[int]) -> FieldSchedule:
        return self._add_list("hours", _HOUR, hours)

    def between_hours(self, first: int, last: int) -> FieldSchedule:
        return self._add("hours", _builder_range(_HOUR, first, last))

    def every_hour(self, step: int) -> FieldSchedule:
        """Hours 0, step, 2*step, ... of each day (cron ``*/step``)."""
        return self._add("hours", _builder_step(_HOUR, step))

    # days of month
    def on_day_of_month(self, day: int) -> FieldSchedule:
        return self._add("days_of_month", [_builder_value(_DOM, day)])

    def on_days_of_month(self, days: Iterable[int]) -> FieldSchedule:
        return self._add_list("days_of_month", _DOM, days)

    def between_days_of_month(self, first: int, last: int) -> FieldSchedule:
        return self._add("days_of_month", _builder_range(_DOM, first, last))

    # months (1-12 or names such as "january" / "jan")
    def on_month(self, month: _Value) -> FieldSchedule:
        return self._add("months", [_builder_value(_MONTH, month)])

    def on_months(self, months: Iterable[_Value]) -> FieldSchedule:
        return self._add_list("months", _MONTH, months)

    def between_months(self, first: _Value, last: _Value) -> FieldSchedule:
        return self._add("months", _builder_range(_MONTH, first, last))

    # days of week (0 or 7 = Sunday .. 6 = Saturday, or names such as "monday" / "mon")
    def on_day_of_week(self, day: _Value) -> FieldSchedule:
        return self._add("days_of_week", [_builder_value(_DOW, day)])

    def on_days_of_week(self, days: Iterable[_Value]) -> FieldSchedule:
        return self._add_list("days_of_week", _DOW, days)

    def between_days_of_week(self, first: _Value, last: _Value) -> FieldSchedule:
        return self._add("days_of_week", _builder_range(_DOW, first, last))

    def on_sundays(self) -> FieldSchedule:
        return self._add("days_of_week", [0])

    def on_mondays(self) -> FieldSchedule:
        return self._add("days_of_week", [1])

    def on_tuesdays(self) -> FieldSchedule:
        return self._add("days_of_week", [2])

    def on_wednesdays(self) -> FieldSchedule:
        return self._add("days_of_week", [3])

    def on_thursdays(self) -> FieldSchedule:
        return self._add("days_of_week", [4])

    def on_fridays(self) -> FieldSchedule:
        return self._add("days_of_week", [5])

    def on_saturdays(self) -> FieldSchedule:
        return self._add("days_of_week", [6])

    def on_weekdays(self) -> FieldSchedule:
        return self._add("days_of_week", [1, 2, 3, 4, 5])

    def on_weekends(self) -> FieldSchedule:
        return self._add("days_of_week", [0, 6])

    def in_timezone(self, tz: str) -> FieldSchedule:
        if not isinstance(tz, str):
            raise ScheduleError(f"schedule() 'tz' must be a string such as 'UTC', got {tz!r}")
        _zone(tz, "schedule()")
        return replace(self, tz=tz)

    def cron_expression(self) -> str:
        """The 6-field (seconds first) expression this builder compiles to."""
        values = (
            self.seconds,
            self.minutes,
            self.hours,
            self.days_of_month,
            self.months,
            self.days_of_week,
        )
        # Units from small to large; day-of-month and day-of-week share the "day" unit.
        unit_of = (0, 1, 2, 3, 4, 3)
        set_units = [unit_of[i] for i, v in enumerate(values) if v]
        smallest = min(set_units, default=None)
        texts: list[str] = []
        for i, (vals, spec) in enumerate(zip(values, _FIELDS, strict=True)):
            if vals:
                texts.append(_format_field(frozenset(vals), spec))
            elif smallest is not None and unit_of[i] < smallest and spec is not _DOW:
                texts.append(str(spec.low))
            else:
                texts.append("*")
        return " ".join(texts)

    @cached_property
    def _cron(self) -> Cron:
        return Cron(self.cron_expression(), self.tz)

    def to_cron(self) -> Cron:
        """Compile (and validate, e.g. Feb 30) to a :class:`Cron`."""
        return self._cron

    def next_after(self, after: datetime) -> datetime:
        return self._cron.next_after(after)

    def describe(self) -> str:
        return self._cron.describe()


def schedule() -> FieldSchedule:
    """An empty :class:`FieldSchedule` (fires every second until narrowed)."""
    return FieldSchedule()
