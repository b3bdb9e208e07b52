"""The fluent schedule builder: :class:`FieldSchedule` and :func:`schedule`, which
compile to a 6-field :class:`~bgjobs.schedules.cron_schedule.Cron`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from bgjobs.errors import ScheduleError
from bgjobs.schedules.cron_fields import (
    _DOM,
    _DOW,
    _FIELDS,
    _HOUR,
    _MINUTE,
    _MONTH,
    _SECOND,
    _Field,
    _format_field,
)
from bgjobs.schedules.cron_schedule import Cron
from bgjobs.schedules.dst import (
    DEFAULT_ON_GAP,
    DEFAULT_ON_REPEAT,
    GapChoice,
    RepeatChoice,
    _check_choices,
)
from bgjobs.schedules.timezones import _zone

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
    defaults to ``*`` (never narrowed implicitly); 0 and 7 are both Sunday. Days chosen
    explicitly are never written with ``*``, so setting both day-of-month and
    day-of-week fires on days matching either (the classic cron rule).
    """

    seconds: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()
    days_of_month: tuple[int, ...] = ()
    months: tuple[int, ...] = ()
    days_of_week: tuple[int, ...] = ()
    tz: str = "UTC"
    on_gap: GapChoice = DEFAULT_ON_GAP
    on_repeat: RepeatChoice = DEFAULT_ON_REPEAT

    def __post_init__(self) -> None:
        # Direct construction gets the same checks as the fluent methods.
        for name, spec in zip(_BUILDER_FIELDS, _FIELDS, strict=True):
            values = getattr(self, name)
            if isinstance(values, str | int) or not isinstance(values, Iterable):
                raise ScheduleError(f"schedule() field {spec.name!r} must be a tuple of ints")
            normal = tuple(sorted({_builder_value(spec, v) for v in values}))
            object.__setattr__(self, name, normal)
        _zone(self.tz, "schedule()")
        _check_choices(self.on_gap, self.on_repeat, "schedule()")

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

    def with_dst(
        self, *, on_gap: GapChoice | None = None, on_repeat: RepeatChoice | None = None
    ) -> FieldSchedule:
        """DST choices (see :func:`bgjobs.schedules.cron`): ``on_gap`` ``"shift"`` or
        ``"skip"``, ``on_repeat`` ``"first"``, ``"second"`` or ``"both"``."""
        return replace(
            self,
            on_gap=self.on_gap if on_gap is None else on_gap,
            on_repeat=self.on_repeat if on_repeat is None else on_repeat,
        )

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
                # Chosen days are written without '*', which would switch the day rule.
                is_day = spec in (_DOM, _DOW)
                texts.append(_format_field(frozenset(vals), spec, star=not is_day))
            elif smallest is not None and unit_of[i] < smallest and spec is not _DOW:
                texts.append(str(spec.low))
            else:
                texts.append("*")
        return " ".join(texts)

    @cached_property
    def _cron(self) -> Cron:
        return Cron(self.cron_expression(), self.tz, self.on_gap, self.on_repeat)

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
