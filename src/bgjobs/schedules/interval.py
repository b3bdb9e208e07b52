"""Fixed-period schedules: :class:`Interval` and its constructor :func:`every`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bgjobs.errors import ScheduleError
from bgjobs.schedules.durations import _ONE_US, _format_duration
from bgjobs.schedules.timezones import _require_aware

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
