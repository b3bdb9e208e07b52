"""Cron schedules: compiling an expression (croniter's parse, the day rule, DST
choices, time zone) and :class:`Cron`/:func:`cron`, which evaluate it on a zone's
wall clock.

croniter reads the text (:mod:`.cron_syntax`); the calendar search
(:mod:`.cron_calendar`) and the DST behaviour (:mod:`.dst`) are bgjobs' own, so the
day-field rule and DST are defined and tested here, not inherited."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from bgjobs.errors import ScheduleError
from bgjobs.schedules.cron_calendar import _Calendar
from bgjobs.schedules.cron_fields import _DOM, _MONTH, _format_field
from bgjobs.schedules.cron_syntax import _calendar, _split_fields
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

# February counts 29: a Feb-29 schedule is rare but valid (it fires in leap years).
_MAX_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}

# Stands in for the hash id while a hashed expression is only validated (see Cron).
_UNBOUND_HASH_ID = b""


@dataclass(frozen=True)
class _Compiled:
    # None: hashed fields whose hash id is not known yet.
    calendar: _Calendar | None
    dst: _DstRule
    hashed: bool


def _compile(
    expression: str, tz: str, on_gap: str, on_repeat: str, hash_id: str | None
) -> _Compiled:
    if not isinstance(expression, str):
        raise ScheduleError(f"cron expression must be a string, got {expression!r}")
    if not isinstance(tz, str):
        raise ScheduleError(f"cron 'tz' must be a string such as 'UTC', got {tz!r}")
    if hash_id is not None and not isinstance(hash_id, str):
        raise ScheduleError(f"cron 'hash_id' must be a string such as 'reports', got {hash_id!r}")
    source = f"cron expression {expression!r}:"
    _check_choices(on_gap, on_repeat, source)
    fields = _split_fields(expression, source)
    if not fields.fixed_time and on_repeat != DEFAULT_ON_REPEAT:
        raise ScheduleError(
            f"{source} on_repeat={on_repeat!r} applies to fixed times only; this "
            "expression's minute or hour is written as the whole range ('*', '*/n' or "
            "'H/n'), so its times run at both occurrences of a repeated hour. Write that "
            "field as a range or list (e.g. hour '0-23/2' instead of '*/2') to make the "
            "times fixed"
        )
    zone = _zone(tz, f"cron {expression!r}:")
    dst = _DstRule.build(zone, fields.fixed_time, on_gap, on_repeat)
    key = _UNBOUND_HASH_ID if hash_id is None else hash_id.encode("utf-8", "surrogatepass")
    calendar = _calendar(fields, key, source)
    _check_can_fire(calendar, source)
    if fields.hashed and hash_id is None:
        return _Compiled(None, dst, hashed=True)
    return _Compiled(calendar, dst, fields.hashed)


def _check_can_fire(calendar: _Calendar, source: str) -> None:
    """Refuse day-of-month values that no chosen month has, when they must match."""
    doms, months = calendar.days_of_month, calendar.months
    if not calendar.days_need_both or calendar.last_day_of_month:
        return
    if not any(d <= _MAX_DAYS[m] for d in doms for m in months):
        raise ScheduleError(
            f"{source} can never fire: field 'day-of-month' ({_format_field(doms, _DOM)}) "
            f"never occurs in field 'month' ({_format_field(frozenset(months), _MONTH)}); "
            "pick days that exist in those months"
        )


@dataclass(frozen=True)
class Cron:
    """A cron expression evaluated on the wall clock of ``tz``.

    5 fields: ``minute hour day-of-month month day-of-week``; 6 fields: ``second`` first.
    Also ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``,
    ``@yearly`` (``@annually``), ``L`` (last day of the month), ``mon#2``/``L5`` (nth
    and last weekday) and hashed ``H`` fields, whose values come from ``hash_id``
    (``scheduled_job()`` passes the job's name). ``on_gap`` and ``on_repeat`` choose
    what happens to times that a DST change skips or repeats (see
    :mod:`bgjobs.schedules.dst`). Validated when constructed.
    """

    expression: str
    tz: str = "UTC"
    on_gap: GapChoice = DEFAULT_ON_GAP
    on_repeat: RepeatChoice = DEFAULT_ON_REPEAT
    hash_id: str | None = None
    _compiled: _Compiled = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        compiled = _compile(self.expression, self.tz, self.on_gap, self.on_repeat, self.hash_id)
        object.__setattr__(self, "_compiled", compiled)

    @property
    def hashed(self) -> bool:
        """True when the expression has ``H`` fields, whose values come from ``hash_id``."""
        return self._compiled.hashed

    def next_after(self, after: datetime) -> datetime:
        return _next_fire(self._calendar(), self._compiled.dst, after)

    def describe(self) -> str:
        # Non-default DST choices are part of the definition: changing one reschedules.
        # So is the hash id of 'H' fields (it picks their values); it means nothing to others.
        expression = " ".join(self.expression.lower().split())
        hashed = f" hash_id={self.hash_id}" if self.hashed and self.hash_id is not None else ""
        choices = _choices_text(self.on_gap, self.on_repeat)
        return f"cron {expression!r} tz={self.tz}{hashed}{choices}"

    def describe_days(self) -> str:
        """Which days fire, in words, e.g. ``day-of-month 1-7 OR Monday``."""
        return self._calendar().describe_days()

    def _calendar(self) -> _Calendar:
        calendar = self._compiled.calendar
        if calendar is None:
            raise ScheduleError(
                f"cron expression {self.expression!r} has 'H' fields, which hash the "
                "schedule's name, and has none: scheduled_job() passes the job's name; "
                "elsewhere give one (cron(..., hash_id=NAME), bgjobs cron --name NAME)"
            )
        return calendar


def cron(
    expression: str,
    tz: str = "UTC",
    *,
    on_gap: GapChoice = DEFAULT_ON_GAP,
    on_repeat: RepeatChoice = DEFAULT_ON_REPEAT,
    hash_id: str | None = None,
) -> Cron:
    """A validated :class:`Cron`; raises :class:`ScheduleError` naming the bad field.

    ``on_gap``: ``"shift"`` (default) or ``"skip"`` a time skipped by spring-forward.
    ``on_repeat``: ``"first"`` (default), ``"second"`` or ``"both"`` occurrences of a
    fixed time repeated by fall-back. ``hash_id``: what ``H`` fields hash; leave it
    unset in :func:`bgjobs.scheduled_job`, which uses the job's name.
    """
    return Cron(expression, tz, on_gap, on_repeat, hash_id)


S = TypeVar("S")


def with_hash_id(schedule: S, name: str) -> S:
    """``schedule`` with ``name`` as the hash id of its ``H`` fields, if it has any and
    no hash id yet (:func:`bgjobs.scheduled_job` passes the job's name)."""
    if isinstance(schedule, Cron) and schedule.hashed and schedule.hash_id is None:
        return replace(schedule, hash_id=name)
    return schedule
