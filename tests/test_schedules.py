"""Tests for bgjobs.schedules: builder -> cron text, fire times vs croniter, DST, intervals,
validation messages, describe() stability and parse_duration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from bgjobs.errors import ScheduleError
from bgjobs.schedules import (
    Cron,
    FieldSchedule,
    Interval,
    Schedule,
    cron,
    every,
    next_times,
    parse_duration,
    schedule,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def croniter_times(expression: str, after: datetime, count: int) -> list[datetime]:
    """Oracle: croniter itself, in UTC (no DST), with its seconds-first switch."""
    it = croniter(expression, after, second_at_beginning=len(expression.split()) == 6)
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


# --------------------------------------------------------------------------- builder table

# (builder, expected 6-field cron, start, expected first fire time or None)
BUILDER_CASES: list[tuple[FieldSchedule, str, datetime, datetime | None]] = [
    (schedule(), "* * * * * *", utc(2024, 1, 1, 0, 0, 0), utc(2024, 1, 1, 0, 0, 1)),
    (schedule().on_minute(10), "0 10 * * * *", utc(2024, 1, 1, 0, 10), utc(2024, 1, 1, 1, 10)),
    (schedule().on_hour(3), "0 0 3 * * *", utc(2024, 1, 1, 3, 0, 1), utc(2024, 1, 2, 3)),
    (
        schedule().on_second(30),
        "30 * * * * *",
        utc(2024, 1, 1, 0, 0, 30),
        utc(2024, 1, 1, 0, 1, 30),
    ),
    # Inclusive range: the last endpoint (12) fires.
    (
        schedule().between_minutes(10, 12),
        "0 10-12 * * * *",
        utc(2024, 1, 1, 0, 11, 5),
        utc(2024, 1, 1, 0, 12),
    ),
    (
        schedule().between_seconds(58, 59),
        "58,59 * * * * *",
        utc(2024, 1, 1, 0, 0, 58),
        utc(2024, 1, 1, 0, 0, 59),
    ),
    (
        schedule().between_hours(22, 23).on_minute(59),
        "0 59 22,23 * * *",
        utc(2024, 1, 1, 23, 0),
        utc(2024, 1, 1, 23, 59),
    ),
    (
        schedule().on_minutes([30, 0]),
        "0 0,30 * * * *",
        utc(2024, 1, 1, 0, 0),
        utc(2024, 1, 1, 0, 30),
    ),
    # Repeated calls add values.
    (
        schedule().on_hours([9, 17]).on_hour(12),
        "0 0 9,12,17 * * *",
        utc(2024, 1, 1, 9, 0),
        utc(2024, 1, 1, 12),
    ),
    (
        schedule().every_minute(15),
        "0 */15 * * * *",
        utc(2024, 1, 1, 0, 44, 59),
        utc(2024, 1, 1, 0, 45),
    ),
    (
        schedule().every_second(20),
        "*/20 * * * * *",
        utc(2024, 1, 1, 0, 0, 40),
        utc(2024, 1, 1, 0, 1, 0),
    ),
    (
        schedule().every_hour(6).on_minute(30),
        "0 30 */6 * * *",
        utc(2024, 1, 1, 18, 30),
        utc(2024, 1, 2, 0, 30),
    ),
    # 2024-01-05 is a Friday: weekdays skip to Monday the 8th.
    (
        schedule().on_weekdays().on_hour(9),
        "0 0 9 * * 1-5",
        utc(2024, 1, 5, 9, 0),
        utc(2024, 1, 8, 9),
    ),
    (
        schedule().on_weekends().on_hour(10).on_minute(30),
        "0 30 10 * * 0,6",
        utc(2024, 1, 1),
        utc(2024, 1, 6, 10, 30),
    ),
    (schedule().on_mondays(), "0 0 0 * * 1", utc(2024, 1, 1), utc(2024, 1, 8)),
    (schedule().on_sundays().on_saturdays(), "0 0 0 * * 0,6", utc(2024, 1, 1), utc(2024, 1, 6)),
    # 7 is Sunday too, and Friday..Sunday stays inclusive through 7.
    (schedule().on_day_of_week(7), "0 0 0 * * 0", utc(2024, 1, 1), utc(2024, 1, 7)),
    (schedule().between_days_of_week(5, 7), "0 0 0 * * 0,5,6", utc(2024, 1, 1), utc(2024, 1, 5)),
    (
        schedule().on_day_of_week("wed").on_hour(8),
        "0 0 8 * * 3",
        utc(2024, 1, 1),
        utc(2024, 1, 3, 8),
    ),
    # Month ends: day 31 skips the 30-day and 29-day months.
    (
        schedule().on_day_of_month(31).on_hour(12),
        "0 0 12 31 * *",
        utc(2024, 1, 31, 13),
        utc(2024, 3, 31, 12),
    ),
    (
        schedule().between_days_of_month(28, 31),
        "0 0 0 28-31 * *",
        utc(2024, 2, 29, 1),
        utc(2024, 3, 28),
    ),
    # Feb 29: next one after 2027-03 is 2028 (leap), and from 2028-03 it is 2032.
    (schedule().on_day_of_month(29).on_month(2), "0 0 0 29 2 *", utc(2027, 3, 1), utc(2028, 2, 29)),
    (
        schedule().on_day_of_month(29).on_month("february"),
        "0 0 0 29 2 *",
        utc(2028, 3, 1),
        utc(2032, 2, 29),
    ),
    # dom and dow both restricted: fire on EITHER (13th or any Friday).
    (schedule().on_day_of_month(13).on_fridays(), "0 0 0 13 * 5", utc(2024, 1, 1), utc(2024, 1, 5)),
    # Lower fields reset when the hour / day / month advances.
    (
        schedule().on_hour(9).on_minute(30),
        "0 30 9 * * *",
        utc(2024, 1, 1, 10, 45, 50),
        utc(2024, 1, 2, 9, 30),
    ),
    (
        schedule().on_day_of_month(1).on_hour(6),
        "0 0 6 1 * *",
        utc(2024, 1, 31, 23, 59, 59),
        utc(2024, 2, 1, 6),
    ),
    # Day-of-week still checked after a month change (March 2025 starts on Saturday).
    (schedule().on_mondays().on_month(3), "0 0 0 * 3 1", utc(2024, 3, 25, 1), utc(2025, 3, 3)),
    # Year rollover.
    (
        schedule().on_month(12).on_day_of_month(31).on_hour(23).on_minute(59).on_second(59),
        "59 59 23 31 12 *",
        utc(2024, 12, 31, 23, 59, 59),
        utc(2025, 12, 31, 23, 59, 59),
    ),
    (schedule().on_month(3), "0 0 0 1 3 *", utc(2024, 3, 1, 0, 0, 0), utc(2025, 3, 1)),
    (schedule().on_months(["jan", "july"]), "0 0 0 1 1,7 *", utc(2024, 1, 1), utc(2024, 7, 1)),
    (
        schedule().between_months(3, 5).on_day_of_month(15),
        "0 0 0 15 3-5 *",
        utc(2024, 5, 15),
        utc(2025, 3, 15),
    ),
    (
        schedule().on_days_of_month([1, 15]).on_hour(0).on_minute(0).on_second(0),
        "0 0 0 1,15 * *",
        utc(2024, 1, 1),
        utc(2024, 1, 15),
    ),
    (
        schedule().on_seconds([0, 1, 2, 3, 10]),
        "0-3,10 * * * * *",
        utc(2024, 1, 1, 0, 0, 3),
        utc(2024, 1, 1, 0, 0, 10),
    ),
]


@pytest.mark.parametrize(("builder", "expression", "start", "first"), BUILDER_CASES)
def test_builder_compiles_and_matches_croniter(
    builder: FieldSchedule, expression: str, start: datetime, first: datetime | None
) -> None:
    assert builder.cron_expression() == expression
    assert builder.to_cron() == Cron(expression, "UTC")
    ours = next_times(builder, start, 8)
    assert ours == croniter_times(expression, start, 8)
    if first is not None:
        assert ours[0] == first
    assert all(t.tzinfo is UTC for t in ours)


def test_builder_is_immutable() -> None:
    base = schedule().on_hour(9)
    extended = base.on_hour(17)
    assert base.hours == (9,)
    assert extended.hours == (9, 17)
    assert base.in_timezone("Europe/Paris").tz == "Europe/Paris"
    assert base.tz == "UTC"


def test_builder_range_end_inclusive_hand_checked() -> None:
    times = next_times(schedule().between_hours(9, 11), utc(2024, 1, 1), 4)
    assert times == [
        utc(2024, 1, 1, 9),
        utc(2024, 1, 1, 10),
        utc(2024, 1, 1, 11),
        utc(2024, 1, 2, 9),
    ]


def test_builder_implements_schedule_and_delegates() -> None:
    built = schedule().on_minute(5).in_timezone("Europe/Paris")
    sched: Schedule = built
    assert sched.describe() == "cron '0 5 * * * *' tz=Europe/Paris"
    assert sched.next_after(utc(2024, 1, 1)) == built.to_cron().next_after(utc(2024, 1, 1))


# --------------------------------------------------------------------------- raw cron

CRON_CASES = [
    "*/5 * * * *",
    "0 9 * * 1-5",
    "15 14 1 * *",
    "0 22 * * 1-5",
    "23 0-20/2 * * *",
    "5 4 * * sun",
    "0 0,12 1 */2 *",
    "0 0 13 * 5",
    "0 0 31 * *",
    "0 0 29 2 *",
    "30 */10 * * * *",
    "0 0 12 * jan,jul mon",
    "10/15 * * * *",
]


@pytest.mark.parametrize("expression", CRON_CASES)
def test_cron_matches_croniter_in_utc(expression: str) -> None:
    start = utc(2027, 12, 30, 22, 47, 13)
    assert next_times(cron(expression), start, 10) == croniter_times(expression, start, 10)


def test_aliases() -> None:
    start = utc(2024, 5, 15, 10, 30)
    assert cron("@hourly").next_after(start) == utc(2024, 5, 15, 11)
    assert cron("@daily").next_after(start) == utc(2024, 5, 16)
    assert cron("@weekly").next_after(start) == utc(2024, 5, 19)  # Sunday
    assert cron("@monthly").next_after(start) == utc(2024, 6, 1)
    assert cron("@yearly").next_after(start) == utc(2025, 1, 1)
    assert cron("@DAILY").describe() == cron("@daily").describe()


def test_six_fields_put_seconds_first() -> None:
    assert cron("15 30 * * * *").next_after(utc(2024, 1, 1)) == utc(2024, 1, 1, 0, 30, 15)


def test_dom_dow_or_rule_hand_checked() -> None:
    # 13th of the month OR any Friday (Jan 2024: Fridays 5, 12, 19, 26).
    days = [t.day for t in next_times(cron("0 0 13 * 5"), utc(2024, 1, 1), 6)]
    assert days == [5, 12, 13, 19, 26, 2]
    # Only day-of-week restricted: only Fridays.
    assert [t.day for t in next_times(cron("0 0 * * 5"), utc(2024, 1, 1), 3)] == [5, 12, 19]
    # A field covering every value counts as '*', so this is Fridays only.
    assert [t.day for t in next_times(cron("0 0 1-31 * 5"), utc(2024, 1, 1), 3)] == [5, 12, 19]


def test_exact_boundary_is_not_returned() -> None:
    assert cron("0 * * * *").next_after(utc(2024, 1, 1, 5)) == utc(2024, 1, 1, 6)
    # Sub-second precision: still strictly after.
    just_before = utc(2024, 1, 1, 5) - timedelta(microseconds=1)
    assert cron("0 * * * *").next_after(just_before) == utc(2024, 1, 1, 5)


def test_cron_accepts_any_aware_input_and_returns_utc() -> None:
    paris_time = datetime(2024, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    result = cron("0 * * * *").next_after(paris_time)
    assert result == utc(2024, 6, 1, 11)
    assert result.tzinfo is UTC


def test_cron_tz_evaluates_wall_clock() -> None:
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
    c = cron("0 9 * * *", tz="Europe/Paris")
    assert c.next_after(utc(2024, 1, 10)) == utc(2024, 1, 10, 8)
    assert c.next_after(utc(2024, 7, 10)) == utc(2024, 7, 10, 7)


# --------------------------------------------------------------------------- DST

PARIS, NEW_YORK = "Europe/Paris", "America/New_York"

# (expression, tz, after, expected fire times in UTC)
DST_CASES = [
    # Paris spring forward 2024-03-31: 02:00 CET -> 03:00 CEST, 02:30 never shows.
    (
        "30 2 * * *",
        PARIS,
        utc(2024, 3, 29, 12),
        [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)],
    ),
    # Paris fall back 2024-10-27: 03:00 CEST -> 02:00 CET, 02:30 happens twice; fire once.
    (
        "30 2 * * *",
        PARIS,
        utc(2024, 10, 25, 12),
        [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)],
    ),
    # New York spring forward 2024-03-10: 02:00 EST -> 03:00 EDT.
    (
        "30 2 * * *",
        NEW_YORK,
        utc(2024, 3, 8, 12),
        [utc(2024, 3, 9, 7, 30), utc(2024, 3, 10, 7, 0), utc(2024, 3, 11, 6, 30)],
    ),
    # New York fall back 2024-11-03: 02:00 EDT -> 01:00 EST, 01:30 happens twice.
    (
        "30 1 * * *",
        NEW_YORK,
        utc(2024, 11, 1, 12),
        [utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)],
    ),
    # 6-field every 30 minutes, Paris spring: 02:00 and 02:30 collapse into 03:00 CEST.
    (
        "0 */30 * * * *",
        PARIS,
        utc(2024, 3, 30, 23, 45),
        [
            utc(2024, 3, 31, 0, 0),
            utc(2024, 3, 31, 0, 30),
            utc(2024, 3, 31, 1, 0),
            utc(2024, 3, 31, 1, 30),
        ],
    ),
    # ... Paris fall: the repeated 02:00 and 02:30 (CET) do not fire again.
    (
        "0 */30 * * * *",
        PARIS,
        utc(2024, 10, 26, 23, 45),
        [
            utc(2024, 10, 27, 0, 0),
            utc(2024, 10, 27, 0, 30),
            utc(2024, 10, 27, 2, 0),
            utc(2024, 10, 27, 2, 30),
        ],
    ),
    # ... New York spring: 02:00 and 02:30 EST never show; 03:00 EDT fires once.
    (
        "0 */30 * * * *",
        NEW_YORK,
        utc(2024, 3, 10, 6, 15),
        [utc(2024, 3, 10, 6, 30), utc(2024, 3, 10, 7, 0), utc(2024, 3, 10, 7, 30)],
    ),
    # ... New York fall: 01:00 and 01:30 fire in EDT only.
    (
        "0 */30 * * * *",
        NEW_YORK,
        utc(2024, 11, 3, 4, 45),
        [
            utc(2024, 11, 3, 5, 0),
            utc(2024, 11, 3, 5, 30),
            utc(2024, 11, 3, 7, 0),
            utc(2024, 11, 3, 7, 30),
        ],
    ),
    # Hourly at :30 through the Paris gap: 02:30 is moved to 03:00, then 03:30 as usual.
    (
        "30 * * * *",
        PARIS,
        utc(2024, 3, 31, 0, 0),
        [utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 30)],
    ),
]


@pytest.mark.parametrize(("expression", "tz", "after", "expected"), DST_CASES)
def test_dst_rule(expression: str, tz: str, after: datetime, expected: list[datetime]) -> None:
    assert next_times(cron(expression, tz), after, len(expected)) == expected


def test_dst_fall_back_after_inside_repeated_hour() -> None:
    every_second = cron("* * * * * *", PARIS)
    # 01:30Z is 02:30 CET, the second pass of the repeated hour: nothing fires until 03:00 CET.
    assert every_second.next_after(utc(2024, 10, 27, 1, 30)) == utc(2024, 10, 27, 2, 0)
    # Last second of the first pass -> straight to 03:00 CET.
    assert every_second.next_after(utc(2024, 10, 27, 0, 59, 59)) == utc(2024, 10, 27, 2, 0)
    half_hourly = cron("0 */30 * * * *", NEW_YORK)
    # 06:10Z is 01:10 EST (second pass): next is 02:00 EST.
    assert half_hourly.next_after(utc(2024, 11, 3, 6, 10)) == utc(2024, 11, 3, 7, 0)


def test_dst_gap_fires_once_per_second_schedule() -> None:
    every_second = cron("* * * * * *", PARIS)
    # 00:59:59Z = 01:59:59 CET; the next instant on the clock is 03:00:00 CEST = 01:00:00Z.
    assert next_times(every_second, utc(2024, 3, 31, 0, 59, 59), 2) == [
        utc(2024, 3, 31, 1, 0, 0),
        utc(2024, 3, 31, 1, 0, 1),
    ]


def test_dst_builder_in_timezone() -> None:
    built = schedule().on_hour(2).on_minute(30).in_timezone(NEW_YORK)
    assert next_times(built, utc(2024, 3, 9, 12), 2) == [
        utc(2024, 3, 10, 7),
        utc(2024, 3, 11, 6, 30),
    ]


# --------------------------------------------------------------------------- intervals


def test_interval_default_anchor_is_epoch() -> None:
    five = every(minutes=5)
    assert five.anchor == utc(1970, 1, 1)
    assert five.next_after(utc(2024, 1, 1, 0, 3, 17)) == utc(2024, 1, 1, 0, 5)


def test_interval_exact_boundary_returns_next() -> None:
    five = every(minutes=5)
    assert five.next_after(utc(2024, 1, 1, 0, 5)) == utc(2024, 1, 1, 0, 10)
    assert five.next_after(utc(2024, 1, 1, 0, 5) - timedelta(microseconds=1)) == utc(
        2024, 1, 1, 0, 5
    )


def test_interval_milliseconds() -> None:
    quarter = every(milliseconds=250)
    after = utc(2024, 1, 1) + timedelta(milliseconds=600)
    assert next_times(quarter, after, 3) == [
        utc(2024, 1, 1) + timedelta(milliseconds=750),
        utc(2024, 1, 1, 0, 0, 1),
        utc(2024, 1, 1, 0, 0, 1) + timedelta(milliseconds=250),
    ]
    # 7ms does not divide a second: the grid stays anchored, it does not restart each second.
    seven = every(milliseconds=7)
    t = seven.next_after(utc(2024, 1, 1))
    assert ((t - utc(1970, 1, 1)) // timedelta(microseconds=1)) % 7000 == 0
    assert utc(2024, 1, 1) < t <= utc(2024, 1, 1) + timedelta(milliseconds=7)


def test_interval_custom_anchor() -> None:
    start = utc(2024, 1, 1, 0, 0, 7)
    hourly = every(hours=1, start=start)
    assert hourly.next_after(utc(2024, 3, 1, 10, 30)) == utc(2024, 3, 1, 11, 0, 7)
    assert hourly.next_after(utc(2024, 3, 1, 11, 0, 7)) == utc(2024, 3, 1, 12, 0, 7)
    # Nothing before the anchor: the first fire time is the anchor itself.
    assert hourly.next_after(utc(2023, 6, 1)) == start
    assert hourly.next_after(start - timedelta(microseconds=1)) == start


def test_interval_anchor_normalised_to_utc() -> None:
    paris_start = datetime(2024, 1, 1, 1, 0, tzinfo=ZoneInfo("Europe/Paris"))
    a = every(days=1, start=paris_start)
    b = every(hours=24, start=utc(2024, 1, 1, 0, 0))
    assert a == b
    assert a.describe() == b.describe() == "every 1d start=2024-01-01T00:00:00+00:00"
    assert a.anchor.tzinfo is UTC


def test_interval_combines_parts_and_returns_utc() -> None:
    s = every(hours=1, minutes=30, seconds=15, milliseconds=500)
    assert s.period == timedelta(hours=1, minutes=30, seconds=15, milliseconds=500)
    offset_input = datetime(2024, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=3)))
    assert s.next_after(offset_input).tzinfo is UTC


def test_interval_and_cron_reject_naive_after() -> None:
    for sched in (every(seconds=1), cron("* * * * *"), schedule()):
        with pytest.raises(ValueError, match="timezone-aware"):
            sched.next_after(datetime(2024, 1, 1))


# --------------------------------------------------------------------------- validation

ERROR_CASES: list[tuple[Callable[[], object], list[str]]] = [
    (lambda: cron("60 * * * *"), ["'minute'", "60", "0-59"]),
    (lambda: cron("* 24 * * *"), ["'hour'", "24", "0-23"]),
    (lambda: cron("0 0 32 * *"), ["'day-of-month'", "32", "1-31"]),
    (lambda: cron("0 0 0 * *"), ["'day-of-month'", "0", "1-31"]),
    (lambda: cron("0 0 * 13 *"), ["'month'", "13", "1-12"]),
    (lambda: cron("0 0 * * 8"), ["'day-of-week'", "8", "0-7"]),
    (lambda: cron("60 * * * * *"), ["'second'", "60", "0-59"]),
    (lambda: cron("*/5 * *"), ["3 fields", "expected 5", "6 (with seconds first)"]),
    (lambda: cron("* * * * * * *"), ["7 fields", "expected 5"]),
    (lambda: cron("0 0 30 2 *"), ["never fire", "'day-of-month'", "'month'"]),
    (lambda: cron("0 0 31 2 *"), ["never fire", "'day-of-month'"]),
    (lambda: cron("0 0 31 4 *"), ["never fire", "'day-of-month' (31)"]),
    (lambda: cron("* * * * *", tz="Mars/Olympus"), ["time zone", "Mars/Olympus", "IANA"]),
    (lambda: cron("@often"), ["unknown alias", "@hourly"]),
    (lambda: cron("5-2 * * * *"), ["'minute'", "reversed"]),
    (lambda: cron("*/0 * * * *"), ["'minute'", "step"]),
    (lambda: cron("0 0 ? * *"), ["'day-of-month'", "not supported"]),
    (lambda: cron("0 0 * foo *"), ["'month'", "'foo'"]),
    (lambda: cron("1,,2 * * * *"), ["'minute'", "empty list item"]),
    (lambda: every(), ["positive period", "every(minutes=5)"]),
    (lambda: every(minutes=-5), ["minutes=-5", ">= 0"]),
    (lambda: every(seconds=float("inf")), ["seconds=inf", "finite"]),
    (lambda: every(minutes=1, start=datetime(2024, 1, 1)), ["'start'", "timezone-aware"]),
    (lambda: Interval(timedelta(0)), ["'period'", "positive"]),
    (lambda: Interval(timedelta(seconds=1), datetime(2024, 1, 1)), ["'anchor'", "timezone-aware"]),
    (lambda: schedule().on_minute(60), ["'minute'", "60", "0-59"]),
    (lambda: schedule().on_second(-1), ["'second'", "-1", "0-59"]),
    (lambda: schedule().on_hour(24), ["'hour'", "24", "0-23"]),
    (lambda: schedule().on_day_of_month(0), ["'day-of-month'", "0", "1-31"]),
    (lambda: schedule().on_month(13), ["'month'", "13", "1-12"]),
    (lambda: schedule().on_month("smarch"), ["'month'", "'smarch'"]),
    (lambda: schedule().on_day_of_week(8), ["'day-of-week'", "8", "0-7"]),
    (lambda: schedule().between_hours(5, 2), ["'hour'", "reversed"]),
    (lambda: schedule().between_days_of_week(6, 0), ["'day-of-week'", "reversed"]),
    (lambda: schedule().on_minutes([5, 61]), ["'minute'", "61"]),
    (lambda: schedule().on_minutes([]), ["'minute'", "empty list"]),
    (lambda: schedule().every_minute(0), ["'minute'", "step"]),
    (lambda: schedule().on_hour(True), ["'hour'", "must be an int"]),
    (lambda: schedule().in_timezone("Nowhere/City"), ["time zone", "Nowhere/City"]),
    (lambda: schedule().on_day_of_month(30).on_month(2).to_cron(), ["never fire", "'month'"]),
    (lambda: FieldSchedule(minutes=(99,)), ["'minute'", "99"]),
]


@pytest.mark.parametrize(("make", "fragments"), ERROR_CASES)
def test_validation_errors_name_the_field(make: Callable[[], object], fragments: list[str]) -> None:
    with pytest.raises(ScheduleError) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_feb_29_alone_is_valid_and_feb_30_with_weekday_is_valid() -> None:
    assert cron("0 0 29 2 *").next_after(utc(2025, 1, 1)) == utc(2028, 2, 29)
    # With day-of-week restricted too, the OR rule makes "Feb 30 or Mondays" fire on Mondays.
    assert cron("0 0 30 2 1").next_after(utc(2024, 2, 1)) == utc(2024, 2, 5)
    # A builder that is impossible mid-way is fine once a valid month is added.
    built = schedule().on_day_of_month(30).on_month(2).on_month(3)
    assert built.next_after(utc(2024, 1, 1)) == utc(2024, 3, 30)


# --------------------------------------------------------------------------- describe()


def test_describe_strings() -> None:
    assert every(minutes=5).describe() == "every 5m"
    assert every(minutes=90).describe() == "every 1h30m"
    assert every(weeks=1).describe() == "every 1w"
    assert every(milliseconds=1500).describe() == "every 1s500ms"
    assert cron("*/5 * * * *", "Europe/Paris").describe() == "cron '*/5 * * * *' tz=Europe/Paris"
    assert schedule().on_minute(10).describe() == "cron '0 10 * * * *' tz=UTC"


def test_describe_is_stable_for_equal_definitions() -> None:
    assert every(minutes=60).describe() == every(hours=1).describe()
    assert every(seconds=90).describe() == every(minutes=1, seconds=30).describe()
    assert cron("0  9 * *   MON").describe() == cron("0 9 * * mon").describe()
    a = schedule().on_hour(17).on_weekdays().on_hour(9)
    b = schedule().on_mondays().on_hours([9, 17]).between_days_of_week(2, 5)
    assert a == b
    assert a.describe() == b.describe() == "cron '0 0 9,17 * * 1-5' tz=UTC"


def test_describe_changes_when_definition_changes() -> None:
    descriptions = {
        every(minutes=5).describe(),
        every(minutes=5, start=utc(2024, 1, 1, 0, 1)).describe(),
        every(minutes=6).describe(),
        cron("*/5 * * * *").describe(),
        cron("*/5 * * * *", "Europe/Paris").describe(),
        schedule().every_minute(5).describe(),
    }
    assert len(descriptions) == 6


# --------------------------------------------------------------------------- parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d 2h 3m 4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1m500ms", timedelta(minutes=1, milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        (" 10s ", timedelta(seconds=10)),
        ("250us", timedelta(microseconds=250)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "5", "m", "5x", "5 minutes", "-5m", "1h1h", "5M", "1h30"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(text)


def test_parse_duration_roundtrips_describe() -> None:
    for period in ("1h30m", "1w2d", "1s500ms", "45s"):
        millis = parse_duration(period) / timedelta(milliseconds=1)
        assert every(milliseconds=millis).describe() == f"every {period}"


# --------------------------------------------------------------------------- next_times


def test_next_times() -> None:
    assert next_times(every(seconds=10), utc(2024, 1, 1), 0) == []
    assert next_times(every(seconds=10), utc(2024, 1, 1), 3) == [
        utc(2024, 1, 1, 0, 0, 10),
        utc(2024, 1, 1, 0, 0, 20),
        utc(2024, 1, 1, 0, 0, 30),
    ]
    with pytest.raises(ValueError, match="count"):
        next_times(every(seconds=10), utc(2024, 1, 1), -1)


def test_day_of_week_seven_is_sunday() -> None:
    start = utc(2024, 1, 1)  # a Monday
    sundays = next_times(cron("0 0 * * 7"), start, 2)
    assert (
        sundays == next_times(cron("0 0 * * sun"), start, 2) == [utc(2024, 1, 7), utc(2024, 1, 14)]
    )
    assert cron("0 0 * * 7-7").next_after(start) == utc(2024, 1, 7)
    # Friday..Sunday through 7, inclusive at both ends.
    assert [t.day for t in next_times(cron("0 0 * * 5-7"), start, 4)] == [5, 6, 7, 12]
    assert [t.day for t in next_times(cron("0 0 * * fri-sat"), start, 3)] == [5, 6, 12]
