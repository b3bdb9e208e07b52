"""Schedules: when a recurring job fires.

A schedule is a pure value with two methods (see :class:`Schedule`): ``next_after``
computes the first fire time strictly after an instant, and ``describe`` returns a
canonical string the runtime stores to notice that a definition changed between deploys.
Nothing here touches a clock or a database, so every answer is deterministic.

Three kinds of schedule exist:

* :class:`Interval` (built with :func:`every`) -- a fixed period on a fixed grid,
  ``anchor + k * period``, so every node computes the same fire times.
* :class:`Cron` (built with :func:`cron`) -- a 5-field or 6-field (seconds first) cron
  expression, parsed by croniter (so ``H``, ``L`` and ``mon#2`` work) and evaluated on
  the wall clock of an IANA time zone by bgjobs' own calendar search (classic
  Vixie/Debian day-field rule). ``H`` fields hash the scheduled job's name
  (:func:`with_hash_id`, called by ``scheduled_job()``).
* :class:`FieldSchedule` (built with :func:`schedule`) -- an immutable fluent builder
  that compiles to a 6-field :class:`Cron`.

DST for cron schedules follows Debian cron: a fixed time (minute and hour not written
with ``*``) repeated by a fall-back fires once, at its first occurrence; a wildcard
time fires through both passes of the repeated hour; a time skipped by a
spring-forward fires at the first instant after the gap. ``on_gap`` and ``on_repeat``
change that per schedule (see :mod:`.dst`).

Layout: :mod:`.durations` (``parse_duration``), :mod:`.interval` (``Interval``/``every``),
:mod:`.cron_fields` (cron field specs, formatting), :mod:`.cron_syntax` (reading cron
text: bgjobs' checks, then croniter), :mod:`.cron_calendar`
(matching wall-clock times, the day rule), :mod:`.timezones` (zone lookup, gaps and
repeats), :mod:`.dst` (DST choices, wall clock to instants),
:mod:`.cron_schedule` (``Cron``/``cron``) and
:mod:`.builder` (``FieldSchedule``/``schedule``). This module holds the
:class:`Schedule` protocol and :func:`next_times`, and re-exports the public names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bgjobs.schedules.builder import FieldSchedule, schedule
from bgjobs.schedules.cron_schedule import Cron, cron, with_hash_id
from bgjobs.schedules.dst import GapChoice, RepeatChoice
from bgjobs.schedules.durations import parse_duration
from bgjobs.schedules.interval import Interval, every

__all__ = [
    "Cron",
    "FieldSchedule",
    "GapChoice",
    "Interval",
    "RepeatChoice",
    "Schedule",
    "cron",
    "every",
    "next_times",
    "parse_duration",
    "schedule",
    "with_hash_id",
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
