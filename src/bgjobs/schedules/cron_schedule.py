"""Cron schedules: compiling an expression (aliases, fields, time zone) and
:class:`Cron`/:func:`cron`, which evaluate it on a zone's wall clock via croniter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from bgjobs.errors import ScheduleError
from bgjobs.schedules.cron_fields import (
    _DOM,
    _DOW,
    _FIELDS,
    _HOUR,
    _MINUTE,
    _MONTH,
    _SECOND,
    _format_field,
    _parse_field,
)
from bgjobs.schedules.timezones import _require_aware, _resolve, _zone

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
