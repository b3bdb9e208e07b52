"""UTC instants for the schedule tables."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def days(year: int, month: int, *numbers: int) -> list[datetime]:
    """Midnight UTC of each day ``numbers`` of ``year``-``month``."""
    return [utc(year, month, n) for n in numbers]
