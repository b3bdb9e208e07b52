"""Daylight saving time for cron schedules: the per-schedule choices and the search
that turns wall-clock matches into instants.

The default follows Debian cron. A *fixed* time (minute and hour fields not written
with ``*``, such as ``30 2 * * *``) runs once a day: if a fall-back repeats it, at its
first occurrence; if a spring-forward skips it, at the first instant after the gap.
A *wildcard* time (minute or hour written with ``*``: ``* * * * *``, ``*/15 * * * *``,
``0 * * * *``) follows real time through a fall-back, so it fires in both passes of
the repeated hour and a frequent job never goes silent.

Choices per schedule:

* ``on_gap``: ``"shift"`` (default) runs a skipped time at the first instant after the
  gap (several skipped times collapse into that one run); ``"skip"`` drops it.
* ``on_repeat`` (fixed times only): ``"first"`` (default), ``"second"`` or ``"both"``
  occurrences of a repeated time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from bgjobs.errors import ScheduleError
from bgjobs.schedules.cron_calendar import _Calendar
from bgjobs.schedules.timezones import _classify, _Repeat, _require_aware

GapChoice = Literal["shift", "skip"]
RepeatChoice = Literal["first", "second", "both"]
_GAP_CHOICES: tuple[str, ...] = get_args(GapChoice)
_REPEAT_CHOICES: tuple[str, ...] = get_args(RepeatChoice)
DEFAULT_ON_GAP: GapChoice = "shift"
DEFAULT_ON_REPEAT: RepeatChoice = "first"

_ONE_SECOND = timedelta(seconds=1)


def _check_choices(on_gap: object, on_repeat: object, source: str) -> None:
    if on_gap not in _GAP_CHOICES:
        raise ScheduleError(
            f"{source} on_gap={on_gap!r} is not a choice; use 'shift' (run a time skipped "
            "by a spring-forward at the first instant after the gap) or 'skip'"
        )
    if on_repeat not in _REPEAT_CHOICES:
        raise ScheduleError(
            f"{source} on_repeat={on_repeat!r} is not a choice; use 'first', 'second' or "
            "'both' (which occurrences of a time repeated by a fall-back run)"
        )


def _choices_text(on_gap: str, on_repeat: str) -> str:
    """The non-default choices, for a schedule's definition string ('' if none)."""
    parts = []
    if on_gap != DEFAULT_ON_GAP:
        parts.append(f" on_gap={on_gap}")
    if on_repeat != DEFAULT_ON_REPEAT:
        parts.append(f" on_repeat={on_repeat}")
    return "".join(parts)


@dataclass(frozen=True)
class _DstRule:
    zone: ZoneInfo
    shift_gaps: bool
    fire_first: bool  # a repeated time fires in the first pass
    fire_second: bool  # ... and/or in the second pass

    @classmethod
    def build(cls, zone: ZoneInfo, fixed: bool, on_gap: str, on_repeat: str) -> _DstRule:
        if not fixed:  # wildcard times follow real time: both passes
            return cls(zone, on_gap == "shift", True, True)
        return cls(
            zone,
            on_gap == "shift",
            on_repeat in ("first", "both"),
            on_repeat in ("second", "both"),
        )


def _next_fire(calendar: _Calendar, rule: _DstRule, after: datetime) -> datetime:
    """First fire instant strictly after ``after``, as a UTC datetime.

    Wall-clock matches come from ``calendar`` in wall order. Outside transitions a later
    wall time is a later instant; a gap is handled as one unit (its shifted instant,
    then resume at its end) and so is a repeated stretch (first pass, second pass, then
    resume at its end), so no transition is ever walked second by second.
    """
    _require_aware(after)
    local = after.astimezone(rule.zone)
    wall = local.replace(tzinfo=None, fold=0)
    start = wall.replace(microsecond=0) + _ONE_SECOND  # matches are whole seconds
    here = _classify(wall, rule.zone)
    if isinstance(here, _Repeat):
        # `after` lies inside a repeated stretch: times earlier on the wall may still
        # be ahead in real time (in the second pass).
        fire = _fire_in_repeat(calendar, rule, here, after, start)
        if fire is not None:
            return fire
        start = max(start, here.end_wall)
    while True:
        match = calendar.next_match(start)
        kind = _classify(match, rule.zone)
        if kind is None:
            fire = match.replace(tzinfo=rule.zone).astimezone(UTC)
            if fire > after:
                return fire
            start = match + _ONE_SECOND
        elif isinstance(kind, _Repeat):
            fire = _fire_in_repeat(calendar, rule, kind, after, match)
            if fire is not None:
                return fire
            start = kind.end_wall
        else:
            if rule.shift_gaps and kind.switch > after:
                return kind.switch
            start = kind.end_wall  # every wall time in the gap maps to the same instant


def _fire_in_repeat(
    calendar: _Calendar, rule: _DstRule, repeat: _Repeat, after: datetime, start: datetime
) -> datetime | None:
    """First fire instant after ``after`` among matches at or after wall time ``start``
    in this repeated stretch (first pass), then among all its matches (second pass)."""
    passes: list[tuple[datetime, timedelta]] = []
    if rule.fire_first and after < repeat.switch:
        passes.append((max(start, repeat.start_wall), repeat.first_offset))
    if rule.fire_second:
        # Before the second pass begins, all of it lies ahead; within it, only from `start`.
        begin = repeat.start_wall if after < repeat.switch else max(start, repeat.start_wall)
        passes.append((begin, repeat.second_offset))
    for begin, offset in passes:
        match = calendar.next_match(begin)
        # Only the first match or two can be at or before `after`: `begin` is past it.
        while match < repeat.end_wall:
            fire = (match - offset).replace(tzinfo=UTC)
            if fire > after:
                return fire
            match = calendar.next_match(match + _ONE_SECOND)
    return None
