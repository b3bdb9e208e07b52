"""Tests for bgjobs.schedules: builder -> cron text and fire times, raw cron in UTC,
intervals, validation messages, describe() stability and parse_duration.

Expected fire times are worked out by hand (2024-01-01 is a Monday; 2027-12-30 a
Thursday; 2028-01-01 a Saturday), never taken from another cron library. DST, the
day-field rule, month ends and leap years have their own tables in tests/schedules/.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from tests.schedules.times import utc

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

# --------------------------------------------------------------------------- builder table

# (builder, expected 6-field cron, start, expected next fire times)
BUILDER_CASES: list[tuple[FieldSchedule, str, datetime, list[datetime]]] = [
    (
        schedule(),
        "* * * * * *",
        utc(2024, 1, 1, 0, 0, 0),
        [utc(2024, 1, 1, 0, 0, 1), utc(2024, 1, 1, 0, 0, 2), utc(2024, 1, 1, 0, 0, 3)],
    ),
    # Strictly after 00:10, so the next :10 is an hour later.
    (
        schedule().on_minute(10),
        "0 10 * * * *",
        utc(2024, 1, 1, 0, 10),
        [utc(2024, 1, 1, 1, 10), utc(2024, 1, 1, 2, 10)],
    ),
    (
        schedule().on_hour(3),
        "0 0 3 * * *",
        utc(2024, 1, 1, 3, 0, 1),
        [utc(2024, 1, 2, 3), utc(2024, 1, 3, 3)],
    ),
    (
        schedule().on_second(30),
        "30 * * * * *",
        utc(2024, 1, 1, 0, 0, 30),
        [utc(2024, 1, 1, 0, 1, 30), utc(2024, 1, 1, 0, 2, 30)],
    ),
    # Inclusive range: the last endpoint (12) fires, then 10 of the next hour.
    (
        schedule().between_minutes(10, 12),
        "0 10-12 * * * *",
        utc(2024, 1, 1, 0, 11, 5),
        [utc(2024, 1, 1, 0, 12), utc(2024, 1, 1, 1, 10), utc(2024, 1, 1, 1, 11)],
    ),
    (
        schedule().between_seconds(58, 59),
        "58,59 * * * * *",
        utc(2024, 1, 1, 0, 0, 58),
        [utc(2024, 1, 1, 0, 0, 59), utc(2024, 1, 1, 0, 1, 58), utc(2024, 1, 1, 0, 1, 59)],
    ),
    (
        schedule().between_hours(22, 23).on_minute(59),
        "0 59 22,23 * * *",
        utc(2024, 1, 1, 23, 0),
        [utc(2024, 1, 1, 23, 59), utc(2024, 1, 2, 22, 59), utc(2024, 1, 2, 23, 59)],
    ),
    (
        schedule().on_minutes([30, 0]),
        "0 0,30 * * * *",
        utc(2024, 1, 1, 0, 0),
        [utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 1, 0)],
    ),
    # Repeated calls add values.
    (
        schedule().on_hours([9, 17]).on_hour(12),
        "0 0 9,12,17 * * *",
        utc(2024, 1, 1, 9, 0),
        [utc(2024, 1, 1, 12), utc(2024, 1, 1, 17), utc(2024, 1, 2, 9)],
    ),
    (
        schedule().every_minute(15),
        "0 */15 * * * *",
        utc(2024, 1, 1, 0, 44, 59),
        [utc(2024, 1, 1, 0, 45), utc(2024, 1, 1, 1, 0), utc(2024, 1, 1, 1, 15)],
    ),
    (
        schedule().every_second(20),
        "*/20 * * * * *",
        utc(2024, 1, 1, 0, 0, 40),
        [utc(2024, 1, 1, 0, 1, 0), utc(2024, 1, 1, 0, 1, 20)],
    ),
    # Hours 0, 6, 12, 18: after 18:30 the next is 00:30 tomorrow.
    (
        schedule().every_hour(6).on_minute(30),
        "0 30 */6 * * *",
        utc(2024, 1, 1, 18, 30),
        [utc(2024, 1, 2, 0, 30), utc(2024, 1, 2, 6, 30)],
    ),
    # 2024-01-05 is a Friday: weekdays skip to Monday the 8th.
    (
        schedule().on_weekdays().on_hour(9),
        "0 0 9 * * 1-5",
        utc(2024, 1, 5, 9, 0),
        [utc(2024, 1, 8, 9), utc(2024, 1, 9, 9)],
    ),
    (
        schedule().on_weekends().on_hour(10).on_minute(30),
        "0 30 10 * * 0,6",
        utc(2024, 1, 1),
        [utc(2024, 1, 6, 10, 30), utc(2024, 1, 7, 10, 30), utc(2024, 1, 13, 10, 30)],
    ),
    (schedule().on_mondays(), "0 0 0 * * 1", utc(2024, 1, 1), [utc(2024, 1, 8), utc(2024, 1, 15)]),
    (
        schedule().on_sundays().on_saturdays(),
        "0 0 0 * * 0,6",
        utc(2024, 1, 1),
        [utc(2024, 1, 6), utc(2024, 1, 7), utc(2024, 1, 13)],
    ),
    # 7 is Sunday too, and Friday..Sunday stays inclusive through 7.
    (
        schedule().on_day_of_week(7),
        "0 0 0 * * 0",
        utc(2024, 1, 1),
        [utc(2024, 1, 7), utc(2024, 1, 14)],
    ),
    (
        schedule().between_days_of_week(5, 7),
        "0 0 0 * * 0,5,6",
        utc(2024, 1, 1),
        [utc(2024, 1, 5), utc(2024, 1, 6), utc(2024, 1, 7), utc(2024, 1, 12)],
    ),
    (
        schedule().on_day_of_week("wed").on_hour(8),
        "0 0 8 * * 3",
        utc(2024, 1, 1),
        [utc(2024, 1, 3, 8), utc(2024, 1, 10, 8)],
    ),
    # Month ends: day 31 skips the 30-day and 29-day months.
    (
        schedule().on_day_of_month(31).on_hour(12),
        "0 0 12 31 * *",
        utc(2024, 1, 31, 13),
        [utc(2024, 3, 31, 12), utc(2024, 5, 31, 12), utc(2024, 7, 31, 12)],
    ),
    (
        schedule().between_days_of_month(28, 31),
        "0 0 0 28-31 * *",
        utc(2024, 2, 29, 1),
        [utc(2024, 3, 28), utc(2024, 3, 29), utc(2024, 3, 30), utc(2024, 3, 31), utc(2024, 4, 28)],
    ),
    # Feb 29: next one after 2027-03 is 2028 (leap), and from 2028-03 it is 2032.
    (
        schedule().on_day_of_month(29).on_month(2),
        "0 0 0 29 2 *",
        utc(2027, 3, 1),
        [utc(2028, 2, 29), utc(2032, 2, 29)],
    ),
    (
        schedule().on_day_of_month(29).on_month("february"),
        "0 0 0 29 2 *",
        utc(2028, 3, 1),
        [utc(2032, 2, 29), utc(2036, 2, 29)],
    ),
    # dom and dow both set: fire on EITHER (13th or any Friday: 5, 12, 13, 19, 26).
    (
        schedule().on_day_of_month(13).on_fridays(),
        "0 0 0 13 * 5",
        utc(2024, 1, 1),
        [utc(2024, 1, d) for d in (5, 12, 13, 19, 26)],
    ),
    # Chosen days are never written with '*': odd days OR Mondays (3, 5, 7, 8, 9).
    (
        schedule().on_days_of_month(range(1, 32, 2)).on_mondays(),
        "0 0 0 1-31/2 * 1",
        utc(2024, 1, 1),
        [utc(2024, 1, d) for d in (3, 5, 7, 8, 9)],
    ),
    # Every weekday chosen, OR the 1st: every day (classic rule).
    (
        schedule().between_days_of_week(0, 6).on_day_of_month(1),
        "0 0 0 1 * 0-6",
        utc(2024, 1, 1),
        [utc(2024, 1, 2), utc(2024, 1, 3)],
    ),
    # Lower fields reset when the hour / day / month advances.
    (
        schedule().on_hour(9).on_minute(30),
        "0 30 9 * * *",
        utc(2024, 1, 1, 10, 45, 50),
        [utc(2024, 1, 2, 9, 30), utc(2024, 1, 3, 9, 30)],
    ),
    (
        schedule().on_day_of_month(1).on_hour(6),
        "0 0 6 1 * *",
        utc(2024, 1, 31, 23, 59, 59),
        [utc(2024, 2, 1, 6), utc(2024, 3, 1, 6)],
    ),
    # Day-of-week still checked after a month change: March 2024's last Monday is the
    # 25th; March 2025 starts on a Saturday, so its Mondays are 3, 10, 17.
    (
        schedule().on_mondays().on_month(3),
        "0 0 0 * 3 1",
        utc(2024, 3, 25, 1),
        [utc(2025, 3, 3), utc(2025, 3, 10), utc(2025, 3, 17)],
    ),
    # Year rollover.
    (
        schedule().on_month(12).on_day_of_month(31).on_hour(23).on_minute(59).on_second(59),
        "59 59 23 31 12 *",
        utc(2024, 12, 31, 23, 59, 59),
        [utc(2025, 12, 31, 23, 59, 59)],
    ),
    (
        schedule().on_month(3),
        "0 0 0 1 3 *",
        utc(2024, 3, 1, 0, 0, 0),
        [utc(2025, 3, 1), utc(2026, 3, 1)],
    ),
    (
        schedule().on_months(["jan", "july"]),
        "0 0 0 1 1,7 *",
        utc(2024, 1, 1),
        [utc(2024, 7, 1), utc(2025, 1, 1)],
    ),
    (
        schedule().between_months(3, 5).on_day_of_month(15),
        "0 0 0 15 3-5 *",
        utc(2024, 5, 15),
        [utc(2025, 3, 15), utc(2025, 4, 15), utc(2025, 5, 15)],
    ),
    (
        schedule().on_days_of_month([1, 15]).on_hour(0).on_minute(0).on_second(0),
        "0 0 0 1,15 * *",
        utc(2024, 1, 1),
        [utc(2024, 1, 15), utc(2024, 2, 1), utc(2024, 2, 15)],
    ),
    (
        schedule().on_seconds([0, 1, 2, 3, 10]),
        "0-3,10 * * * * *",
        utc(2024, 1, 1, 0, 0, 3),
        [utc(2024, 1, 1, 0, 0, 10), utc(2024, 1, 1, 0, 1, 0), utc(2024, 1, 1, 0, 1, 1)],
    ),
]


@pytest.mark.parametrize(("builder", "expression", "start", "expected"), BUILDER_CASES)
def test_builder_compiles_and_fires(
    builder: FieldSchedule, expression: str, start: datetime, expected: list[datetime]
) -> None:
    assert builder.cron_expression() == expression
    assert builder.to_cron() == Cron(expression, "UTC")
    ours = next_times(builder, start, len(expected))
    assert ours == expected
    assert all(t.tzinfo is UTC for t in ours)


def test_builder_is_immutable() -> None:
    base = schedule().on_hour(9)
    extended = base.on_hour(17)
    assert base.hours == (9,)
    assert extended.hours == (9, 17)
    assert base.in_timezone("Europe/Paris").tz == "Europe/Paris"
    assert base.tz == "UTC"
    assert base.with_dst(on_gap="skip").on_gap == "skip"
    assert base.on_gap == "shift"


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

AFTER = utc(2027, 12, 30, 22, 47, 13)  # a Thursday; 2028 is a leap year

# (expression, expected fire times after AFTER, in UTC)
CRON_CASES: list[tuple[str, list[datetime]]] = [
    ("*/5 * * * *", [utc(2027, 12, 30, 22, 50), utc(2027, 12, 30, 22, 55), utc(2027, 12, 30, 23)]),
    # Friday the 31st, then Monday Jan 3 (Jan 1-2 2028 are a weekend).
    ("0 9 * * 1-5", [utc(2027, 12, 31, 9), utc(2028, 1, 3, 9), utc(2028, 1, 4, 9)]),
    ("15 14 1 * *", [utc(2028, 1, 1, 14, 15), utc(2028, 2, 1, 14, 15), utc(2028, 3, 1, 14, 15)]),
    # 22:00 today has passed (22:47).
    ("0 22 * * 1-5", [utc(2027, 12, 31, 22), utc(2028, 1, 3, 22)]),
    # Hours 0, 2, ..., 20: after 20:23 comes 00:23 of the next day.
    (
        "23 0-20/2 * * *",
        [utc(2027, 12, 31, h, 23) for h in range(0, 21, 2)] + [utc(2028, 1, 1, 0, 23)],
    ),
    ("5 4 * * sun", [utc(2028, 1, 2, 4, 5), utc(2028, 1, 9, 4, 5)]),
    # Odd months (1, 3, ...), day 1, at 00:00 and 12:00.
    ("0 0,12 1 */2 *", [utc(2028, 1, 1), utc(2028, 1, 1, 12), utc(2028, 3, 1)]),
    # 13th OR Friday: Fri 31, Fri Jan 7, Thu Jan 13, Fri Jan 14.
    (
        "0 0 13 * 5",
        [utc(2027, 12, 31), utc(2028, 1, 7), utc(2028, 1, 13), utc(2028, 1, 14)],
    ),
    ("0 0 31 * *", [utc(2027, 12, 31), utc(2028, 1, 31), utc(2028, 3, 31)]),
    ("0 0 29 2 *", [utc(2028, 2, 29), utc(2032, 2, 29)]),
    # 6 fields: second 30 of minutes 0, 10, ..., 50.
    (
        "30 */10 * * * *",
        [
            utc(2027, 12, 30, 22, 50, 30),
            utc(2027, 12, 30, 23, 0, 30),
            utc(2027, 12, 30, 23, 10, 30),
        ],
    ),
    # 6 fields: noon on Mondays of January and July. Jan 2028 Mondays: 3, 10, 17, 24,
    # 31; July 1 2028 is 182 days (26 weeks) after Jan 1, a Saturday, so July 3.
    (
        "0 0 12 * jan,jul mon",
        [utc(2028, 1, d, 12) for d in (3, 10, 17, 24, 31)] + [utc(2028, 7, 3, 12)],
    ),
    # '10/15' is 10, 25, 40, 55.
    ("10/15 * * * *", [utc(2027, 12, 30, 22, 55), utc(2027, 12, 30, 23, 10)]),
]


@pytest.mark.parametrize(("expression", "expected"), CRON_CASES, ids=[c[0] for c in CRON_CASES])
def test_cron_in_utc(expression: str, expected: list[datetime]) -> None:
    assert next_times(cron(expression), AFTER, len(expected)) == expected


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


def test_dom_dow_rule_hand_checked() -> None:
    # 13th of the month OR any Friday (Jan 2024: Fridays 5, 12, 19, 26).
    days = [t.day for t in next_times(cron("0 0 13 * 5"), utc(2024, 1, 1), 6)]
    assert days == [5, 12, 13, 19, 26, 2]
    # Only day-of-week restricted: only Fridays.
    assert [t.day for t in next_times(cron("0 0 * * 5"), utc(2024, 1, 1), 3)] == [5, 12, 19]
    # '1-31' is written restricted, so it ORs with Friday: every day (classic cron).
    assert [t.day for t in next_times(cron("0 0 1-31 * 5"), utc(2024, 1, 1), 3)] == [2, 3, 4]
    # '*/1' starts with '*', so both must match: Fridays.
    assert [t.day for t in next_times(cron("0 0 */1 * 5"), utc(2024, 1, 1), 3)] == [5, 12, 19]


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
    (lambda: cron("0 0 30 2 */7"), ["never fire", "'day-of-month' (30)"]),
    (
        lambda: cron("0 2 * * *", on_gap="later"),  # type: ignore[arg-type]
        ["on_gap='later'", "'shift'", "'skip'"],
    ),
    (
        lambda: cron("0 2 * * *", on_repeat="twice"),  # type: ignore[arg-type]
        ["on_repeat='twice'", "'second' or 'both'"],
    ),
    (lambda: cron("*/5 * * * *", on_repeat="both"), ["on_repeat='both'", "fixed times only"]),
    (
        lambda: schedule().with_dst(on_gap="never"),  # type: ignore[arg-type]
        ["schedule()", "on_gap='never'"],
    ),
    (
        lambda: FieldSchedule(on_repeat="last"),  # type: ignore[arg-type]
        ["schedule()", "on_repeat='last'"],
    ),
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
        cron("*/5 * * * *", on_gap="skip").describe(),
        cron("0 2 * * *", on_repeat="both").describe(),
        cron("0 2 * * *").describe(),
    }
    assert len(descriptions) == 9


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
