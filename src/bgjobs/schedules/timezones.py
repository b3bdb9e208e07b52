"""Time-zone handling for schedules: aware-datetime checks, IANA zone lookup, and
classifying naive wall-clock times that a DST transition skips or repeats.

What a schedule does with gaps and repeated times is decided in :mod:`.dst`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bgjobs.errors import ScheduleError


def _require_aware(after: datetime) -> None:
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(
            f"next_after() needs a timezone-aware datetime, got naive {after.isoformat()}; "
            "pass e.g. datetime.now(timezone.utc)"
        )


def _zone(tz: str, source: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ScheduleError(
            f"{source} time zone {tz!r} is unknown; use an IANA name such as "
            "'UTC', 'Europe/Paris' or 'America/New_York'"
        ) from exc


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


@dataclass(frozen=True)
class _Gap:
    """A spring-forward gap: wall times in it never show on the clock."""

    switch: datetime  # UTC instant of the transition = first instant after the gap
    end_wall: datetime  # naive wall time at ``switch``: the first valid time after the gap


@dataclass(frozen=True)
class _Repeat:
    """A fall-back repeat: wall times in [start_wall, end_wall) show twice."""

    switch: datetime  # UTC instant the second pass begins
    start_wall: datetime
    end_wall: datetime
    first_offset: timedelta  # UTC offset of the first pass
    second_offset: timedelta  # UTC offset of the second pass


def _classify(wall: datetime, zone: ZoneInfo) -> _Gap | _Repeat | None:
    """Whether a naive wall time is in a DST gap, in a repeated stretch, or ordinary."""
    # PEP 495: fold=0 applies the offset from before the transition, fold=1 the one after.
    before = wall.replace(tzinfo=zone, fold=0).utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None  # ZoneInfo always gives an offset
    if before == after:
        return None
    early, late = sorted((wall - before, wall - after))
    switch = _transition(zone, early.replace(tzinfo=UTC), late.replace(tzinfo=UTC))
    naive_switch = switch.replace(tzinfo=None)
    if before < after:  # the clock jumped forward over this wall time
        return _Gap(switch, naive_switch + after)
    return _Repeat(switch, naive_switch + after, naive_switch + before, before, after)
