"""Cron schedules: compiling an expression (aliases, fields, day rule, DST choices,
time zone) and :class:`Cron`/:func:`cron`, which evaluate it on a zone's wall clock.

The calendar maths is bgjobs' own (:mod:`.cron_calendar`), so the day-field rule and
the DST behaviour (:mod:`.dst`) are defined and tested here, not inherited."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bgjobs.errors import ScheduleError
from bgjobs.schedules.cron_calendar import _Calendar
from bgjobs.schedules.cron_fields import _DOM, _FIELDS, _MONTH, _format_field, _parse_field
from bgjobs.schedules.dst import (
    DEFAULT_ON_GAP,
    DEFAULT_ON_REPEAT,
    GapChoice,
    RepeatChoice,
    _check_choices,
    _choices_text,
    _DstRule,
    _next_fire,
)
from bgjobs.schedules.timezones import _zone

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
    calendar: _Calendar
    dst: _DstRule


def _compile(expression: str, tz: str, on_gap: str, on_repeat: str) -> _Compiled:
    if not isinstance(expression, str):
        raise ScheduleError(f"cron expression must be a string, got {expression!r}")
    if not isinstance(tz, str):
        raise ScheduleError(f"cron 'tz' must be a string such as 'UTC', got {tz!r}")
    source = f"cron expression {expression!r}:"
    _check_choices(on_gap, on_repeat, source)
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
    seconds, minutes, hours, doms, months, dows = (
        _parse_field(part, spec, source) for part, spec in zip(parts, _FIELDS, strict=True)
    )
    _, minute_text, hour_text, dom_text, _, dow_text = parts
    # Classic cron: a day field written with '*' (even '*/2') makes both day fields
    # required; two restricted day fields are alternatives.
    days_need_both = dom_text.startswith("*") or dow_text.startswith("*")
    if days_need_both and not any(d <= _MAX_DAYS[m] for d in doms for m in months):
        raise ScheduleError(
            f"{source} can never fire: field 'day-of-month' ({_format_field(doms, _DOM)}) "
            f"never occurs in field 'month' ({_format_field(months, _MONTH)}); pick days "
            "that exist in those months"
        )
    # Debian cron: a minute or hour written with '*' is a wildcard job, which runs in
    # real time through a repeated hour; otherwise the time is fixed.
    fixed = not (minute_text.startswith("*") or hour_text.startswith("*"))
    if not fixed and on_repeat != DEFAULT_ON_REPEAT:
        raise ScheduleError(
            f"{source} on_repeat={on_repeat!r} applies to fixed times only; this "
            "expression's minute or hour starts with '*', so its times run at both "
            "occurrences of a repeated hour. Write that field as a range or list "
            "(e.g. hour '0-23/2' instead of '*/2') to make the times fixed"
        )
    zone = _zone(tz, f"cron {expression!r}:")
    calendar = _Calendar(
        tuple(sorted(seconds)),
        tuple(sorted(minutes)),
        tuple(sorted(hours)),
        doms,
        tuple(sorted(months)),
        dows,
        days_need_both,
    )
    return _Compiled(calendar, _DstRule.build(zone, fixed, on_gap, on_repeat))


@dataclass(frozen=True)
class Cron:
    """A cron expression evaluated on the wall clock of ``tz``.

    5 fields: ``minute hour day-of-month month day-of-week``; 6 fields: ``second`` first.
    Also ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``,
    ``@yearly`` (``@annually``). ``on_gap`` and ``on_repeat`` choose what happens to
    times that a DST change skips or repeats (see :mod:`bgjobs.schedules.dst`).
    Validated when constructed.
    """

    expression: str
    tz: str = "UTC"
    on_gap: GapChoice = DEFAULT_ON_GAP
    on_repeat: RepeatChoice = DEFAULT_ON_REPEAT
    _compiled: _Compiled = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        compiled = _compile(self.expression, self.tz, self.on_gap, self.on_repeat)
        object.__setattr__(self, "_compiled", compiled)

    def next_after(self, after: datetime) -> datetime:
        return _next_fire(self._compiled.calendar, self._compiled.dst, after)

    def describe(self) -> str:
        # Non-default DST choices are part of the definition: changing one reschedules.
        expression = " ".join(self.expression.lower().split())
        return f"cron {expression!r} tz={self.tz}" + _choices_text(self.on_gap, self.on_repeat)

    def describe_days(self) -> str:
        """Which days fire, in words, e.g. ``day-of-month 1-7 OR Monday``."""
        return self._compiled.calendar.describe_days()


def cron(
    expression: str,
    tz: str = "UTC",
    *,
    on_gap: GapChoice = DEFAULT_ON_GAP,
    on_repeat: RepeatChoice = DEFAULT_ON_REPEAT,
) -> Cron:
    """A validated :class:`Cron`; raises :class:`ScheduleError` naming the bad field.

    ``on_gap``: ``"shift"`` (default) or ``"skip"`` a time skipped by spring-forward.
    ``on_repeat``: ``"first"`` (default), ``"second"`` or ``"both"`` occurrences of a
    fixed time repeated by fall-back.
    """
    return Cron(expression, tz, on_gap, on_repeat)
