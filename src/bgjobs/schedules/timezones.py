"""Time-zone handling for schedules: aware-datetime checks, IANA zone lookup, and the
mapping of naive wall-clock cron matches to instants across DST transitions.

DST rule for cron schedules: a wall-clock time skipped by a spring-forward gap fires
once, at the first instant after the gap; a wall-clock time repeated by a fall-back
fires once, at its first occurrence.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bgjobs.errors import ScheduleError
from bgjobs.schedules.durations import _ONE_US


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
