"""The cron calendar with hand-worked expected days: the classic day-of-month /
day-of-week rule, month ends and leap years (UTC, so no DST is involved).

Weekday anchors used below: 2024-01-01 is a Monday; 2026-01-01 a Thursday;
2028-01-01 a Saturday; 2004-02-29 was a Sunday. February 29 moves 5 weekdays every
4 years inside a century (4 * 365 + 1 = 1461 days = 208 weeks + 5 days), and 2100
is not a leap year (divisible by 100, not by 400).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from tests.schedules.times import days, utc

from bgjobs.errors import ScheduleError
from bgjobs.schedules import cron, next_times, schedule

# (expression, after, expected fire times)
DAY_RULE_CASES: dict[str, tuple[str, datetime, list[datetime]]] = {
    # Both day fields restricted: either matches. Days 1-7, then Mondays only.
    "restricted-both-or": (
        "0 0 1-7 * mon",
        utc(2024, 1, 1),
        [*days(2024, 1, 2, 3, 4, 5, 6, 7, 8, 15, 22, 29), utc(2024, 2, 1)],
    ),
    # '*/2' starts with '*': odd days AND Mondays. January's Mondays are 1, 8, 15, 22,
    # 29 (odd: 15, 29 after the 1st); February's are 5, 12, 19, 26 (odd: 5, 19).
    "star-step-day-of-month-and": (
        "0 0 */2 * mon",
        utc(2024, 1, 1),
        [*days(2024, 1, 15, 29), *days(2024, 2, 5, 19)],
    ),
    # '0-6' lists every weekday but is written restricted: OR, so every day fires.
    "full-weekday-range-is-restricted": (
        "0 0 1 * 0-6",
        utc(2024, 1, 1),
        days(2024, 1, 2, 3, 4),
    ),
    "full-day-of-month-range-is-restricted": (
        "0 0 1-31 * 5",
        utc(2024, 1, 1),
        days(2024, 1, 2, 3),
    ),
    # Day-of-week '*/5' = Sunday and Friday, written with '*': the 13th must be one of
    # them. 13ths of 2024: Jan Sat, Feb Tue, Mar Wed, Apr Sat, May Mon, Jun Thu, Jul
    # Sat, Aug Tue, Sep Fri, Oct Sun, Nov Wed, Dec Fri; 2025: Jan Mon, Feb Thu, Mar
    # Thu, Apr Sun.
    "star-step-day-of-week-and": (
        "0 0 13 * */5",
        utc(2024, 1, 1),
        [utc(2024, 9, 13), utc(2024, 10, 13), utc(2024, 12, 13), utc(2025, 4, 13)],
    ),
    # Days 1, 11, 21, 31 that are Fridays. 2024's Fridays: Jan 5+7k, Feb 2+7k, Mar 1+7k,
    # Apr 5+7k, May 3+7k, Jun 7+7k, ..., Oct 4+7k: so Mar 1, May 31, Jun 21, Oct 11.
    "star-step-day-of-month-and-month-ends": (
        "0 0 */10 * fri",
        utc(2024, 1, 1),
        [utc(2024, 3, 1), utc(2024, 5, 31), utc(2024, 6, 21), utc(2024, 10, 11)],
    ),
    # Day-of-month '*': only the weekday decides.
    "star-day-of-month": ("0 0 * * */2", utc(2024, 1, 1), days(2024, 1, 2, 4, 6, 7)),
    "star-step-one-day-of-month": ("0 0 */1 * 1", utc(2024, 1, 1), days(2024, 1, 8, 15)),
    "day-of-month-only": ("0 0 13 * *", utc(2024, 1, 1), [utc(2024, 1, 13), utc(2024, 2, 13)]),
    "list-or-weekdays": ("0 0 1,15 * 1-5", utc(2024, 1, 1), days(2024, 1, 2, 3, 4, 5, 8)),
    # Feb 29 OR any Monday in February. Feb 2026 starts on a Sunday (Mondays 2, 9, 16,
    # 23); Feb 2027 starts on a Monday.
    "feb-29-or-monday": (
        "0 0 29 2 1",
        utc(2025, 3, 1),
        [*days(2026, 2, 2, 9, 16, 23), utc(2027, 2, 1)],
    ),
    # Feb 2028 starts on a Tuesday: Monday the 28th, then the 29th (a Tuesday) by day;
    # Feb 2029 starts on a Thursday, so its first Monday is the 5th.
    "feb-29-or-monday-leap-year": (
        "0 0 29 2 1",
        utc(2028, 2, 25),
        [utc(2028, 2, 28), utc(2028, 2, 29), utc(2029, 2, 5)],
    ),
    # Feb 29 AND Sunday: 2004 + 28 = 2032, 2060, 2088; 2100 is skipped, which shifts
    # the cycle: 2096 Wed, 2104 Fri, 2108 Wed, ... 2128 Sun.
    "feb-29-and-sunday": (
        "0 0 29 2 */7",
        utc(2024, 3, 1),
        [utc(2032, 2, 29), utc(2060, 2, 29), utc(2088, 2, 29), utc(2128, 2, 29)],
    ),
}

MONTH_END_CASES: dict[str, tuple[str, datetime, list[datetime]]] = {
    "day-31-skips-short-months": (
        "0 12 31 * *",
        utc(2024, 1, 31, 13),
        [utc(2024, m, 31, 12) for m in (3, 5, 7, 8, 10, 12)],
    ),
    "day-30-skips-february": ("0 0 30 * *", utc(2024, 1, 30, 1), days(2024, 3, 30)),
    "feb-29-waits-for-a-leap-year": (
        "0 0 29 2 *",
        utc(2025, 1, 1),
        [utc(2028, 2, 29), utc(2032, 2, 29)],
    ),
    "feb-29-skips-2100": ("0 0 29 2 *", utc(2096, 3, 1), [utc(2104, 2, 29)]),
    "feb-28-to-31-in-2100": (
        "0 0 28-31 2 *",
        utc(2100, 2, 27),
        [utc(2100, 2, 28), utc(2101, 2, 28), utc(2102, 2, 28)],
    ),
    "leap-day-then-march": (
        "0 6 28-31 * *",
        utc(2024, 2, 28, 7),
        [
            utc(2024, 2, 29, 6),
            utc(2024, 3, 28, 6),
        ],
    ),
    "last-second-of-the-year": (
        "59 59 23 31 12 *",
        utc(2024, 12, 31, 23, 59, 59),
        [utc(2025, 12, 31, 23, 59, 59), utc(2026, 12, 31, 23, 59, 59)],
    ),
    "every-second-over-new-year": (
        "* * * * * *",
        utc(2024, 12, 31, 23, 59, 58),
        [utc(2024, 12, 31, 23, 59, 59), utc(2025, 1, 1, 0, 0, 0)],
    ),
}


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [*DAY_RULE_CASES.values(), *MONTH_END_CASES.values()],
    ids=[*DAY_RULE_CASES, *MONTH_END_CASES],
)
def test_calendar_table(expression: str, after: datetime, expected: list[datetime]) -> None:
    assert next_times(cron(expression), after, len(expected)) == expected


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("0 0 1-7 * mon", "day-of-month 1-7 OR Monday"),
        (
            "0 0 */2 * mon",
            "day-of-month 1-31/2 AND Monday (a day field starts with '*', so both must match)",
        ),
        ("0 0 13 * */5", "day-of-month 13 AND (Sunday, Friday) (a day field starts with '*'"),
        ("0 0 1 * 0-6", "day-of-month 1 OR Sunday-Saturday"),
        ("* * * * *", "every day"),
        ("@weekly", "Sunday"),
        ("0 9 * * mon-fri", "Monday-Friday"),
        ("0 9 * * sat,sun", "Sunday, Saturday"),
        ("0 0 1,15 * *", "day-of-month 1,15"),
    ],
)
def test_describe_days(expression: str, text: str) -> None:
    assert cron(expression).describe_days().startswith(text)


def test_builder_writes_chosen_days_without_star() -> None:
    # Odd days chosen explicitly stay restricted ('1-31/2'), so they OR with Mondays.
    odd_or_monday = schedule().on_days_of_month(range(1, 32, 2)).on_mondays()
    assert odd_or_monday.cron_expression() == "0 0 0 1-31/2 * 1"
    assert [t.day for t in next_times(odd_or_monday, utc(2024, 1, 1), 5)] == [3, 5, 7, 8, 9]
    # Every weekday chosen explicitly ORs with the 1st: every day.
    every_day = schedule().between_days_of_week(0, 6).on_day_of_month(1)
    assert every_day.cron_expression() == "0 0 0 1 * 0-6"
    assert next_times(every_day, utc(2024, 1, 1), 2) == days(2024, 1, 2, 3)
    # Only weekdays set: day-of-month stays '*', so the weekdays alone decide.
    assert schedule().on_weekdays().on_hour(9).cron_expression() == "0 0 9 * * 1-5"


def test_never_firing_day_combinations_are_rejected() -> None:
    # '*/7' (Sundays) starts with '*': the day must be Feb 30 AND a Sunday, which never is.
    with pytest.raises(ScheduleError, match="can never fire"):
        cron("0 0 30 2 */7")
    # Both restricted: Feb 30 OR Mondays, so Mondays in February fire.
    assert cron("0 0 30 2 1").next_after(utc(2024, 2, 1)) == utc(2024, 2, 5)
