"""Cross-check against a brute-force evaluator written for this test alone.

The reference walks *real time* minute by minute and asks, for each UTC minute, what
the zone's clock shows and whether the job fires then. It shares no code with the
engine (which searches wall-clock fields and maps them to instants), so agreement over
whole DST days in several zones, for every choice, is strong evidence for both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bgjobs.schedules import cron, next_times

MINUTE = timedelta(minutes=1)


def _values(text: str, low: int, high: int) -> set[int]:
    """A tiny parser for numeric cron fields: '*', 'a', 'a-b', '/n', lists."""
    out: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            start, stop = (int(x) for x in base.split("-"))
        else:
            start = int(base)
            stop = high if step else start
        out.update(range(start, stop + 1, int(step or 1)))
    return out


class Reference:
    def __init__(self, expression: str, gap: str, repeat: str) -> None:
        minute, hour, dom, month, dow = expression.split()
        self.minutes, self.hours = _values(minute, 0, 59), _values(hour, 0, 23)
        self.doms, self.months = _values(dom, 1, 31), _values(month, 1, 12)
        self.dows = {d % 7 for d in _values(dow, 0, 6)}
        self.both_days = dom.startswith("*") or dow.startswith("*")
        wildcard = minute.startswith("*") or hour.startswith("*")
        self.first = wildcard or repeat in ("first", "both")
        self.second = wildcard or repeat in ("second", "both")
        self.shift = gap == "shift"

    def matches(self, wall: datetime) -> bool:
        in_dom, in_dow = wall.day in self.doms, (wall.isoweekday() % 7) in self.dows
        day_ok = (in_dom and in_dow) if self.both_days else (in_dom or in_dow)
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and day_ok
        )

    def fires(self, instant: datetime, zone: ZoneInfo) -> bool:
        local = instant.astimezone(zone)
        wall = local.replace(tzinfo=None)
        previous = (instant - MINUTE).astimezone(zone)
        offset, before = local.utcoffset(), previous.utcoffset()
        assert offset is not None and before is not None
        if offset > before and self.shift:
            # The clock just jumped forward: walls in [wall - jump, wall) never showed.
            skipped = wall - (offset - before)
            while skipped < wall:
                if self.matches(skipped):
                    return True
                skipped += MINUTE
        if not self.matches(wall):
            return False
        repeated = (
            wall.replace(tzinfo=zone, fold=0).utcoffset()
            != wall.replace(tzinfo=zone, fold=1).utcoffset()
        )
        if not repeated:
            return True
        return self.second if local.fold else self.first


EXPRESSIONS = [
    "* * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "30 * * * *",
    "15 */2 * * *",
    "*/20 2 * * *",
    "30 2 * * *",
    "0,45 1-3 * * *",
    "0 0-23/3 * * *",
    "10 1 */2 * 0",
    "0,30 1-2 4,25 * 6",
]
# One day either side of each 2026 transition (Lord Howe moves by 30 minutes).
WINDOWS = [
    ("Europe/Paris", datetime(2026, 3, 28, 12, tzinfo=UTC)),
    ("Europe/Paris", datetime(2026, 10, 24, 12, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 3, 7, 18, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 10, 31, 18, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 4, 4, 0, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 10, 3, 0, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 0, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 10, 3, 0, tzinfo=UTC)),
    ("Asia/Kolkata", datetime(2026, 10, 24, 12, tzinfo=UTC)),
]
CHOICES = [("shift", "first"), ("skip", "second"), ("shift", "both")]


@pytest.mark.parametrize(("tz", "start"), WINDOWS, ids=[f"{tz}-{s:%m-%d}" for tz, s in WINDOWS])
def test_engine_agrees_with_brute_force(tz: str, start: datetime) -> None:
    zone = ZoneInfo(tz)
    span = [start + MINUTE * i for i in range(1, 36 * 60)]
    for expression in EXPRESSIONS:
        fixed = not (expression.split()[0].startswith("*") or expression.split()[1].startswith("*"))
        for gap, repeat in CHOICES if fixed else [(g, "first") for g in ("shift", "skip")]:
            reference = Reference(expression, gap, repeat)
            expected = [t for t in span if reference.fires(t, zone)]
            schedule = cron(expression, tz, on_gap=gap, on_repeat=repeat)
            ours = [t for t in next_times(schedule, start, len(expected) + 1) if t <= span[-1]]
            assert ours == expected, (expression, gap, repeat)
