"""The syntax croniter's parser brings (``L``, ``mon#2``, ``L5``, hashed ``H`` fields),
what bgjobs keeps of its own meaning, and what it refuses. Expected times are worked
out by hand (UTC unless a zone is named), never taken from croniter's own iterator.

Weekday anchors: 2024-01-01 is a Monday, so Feb 1 2024 (+31 days) is a Thursday, Mar 1
(+60) a Friday, Apr 1 (+91) a Monday, May 1 (+121) a Wednesday; Feb 1 2026 is a
Sunday; Feb 29 is a Sunday in 2004 + 28k up to 2088 (see test_cron_calendar.py).

Hashed fields: croniter computes ``H`` as ``(crc32(hash_id) >> field) % size + low``,
field 0 minute, 1 hour, 2 day-of-month, 3 month, 4 day-of-week, 5 second; ``H/n`` picks
its start that way among the first ``n`` values. crc32(b"reports") = 4045383493 and
crc32(b"cleanup") = 3393729753 (``python -c "import zlib; print(zlib.crc32(b'reports'))"``):

* ``reports``: minute 4045383493 % 60 = 13; hour (>> 1) 2022691746 % 24 = 18;
  second (>> 5) 126418234 % 60 = 34; ``H/15`` starts at 4045383493 % 15 = 13;
  ``H(40-59)`` is 40 + 4045383493 % 20 = 53; day-of-month ``H/2`` starts at
  1 + (>> 2) 1011345873 % 2 = 2 (even days).
* ``cleanup``: minute 3393729753 % 60 = 33; ``H/15`` starts at 3.

These pin the values: if a croniter release hashed differently, every hashed schedule
would move on upgrade, and these tests would say so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from tests.schedules.times import days, utc

import bgjobs
from bgjobs.errors import ScheduleError
from bgjobs.runtime import scheduling
from bgjobs.schedules import cron, every, next_times, schedule, with_hash_id

JAN_1 = utc(2024, 1, 1)

# (expression, after, expected fire times)
LAST_DAY_CASES: dict[str, tuple[str, datetime, list[datetime]]] = {
    # Day-of-week '*': the last day alone decides, leap years included.
    "last-day": (
        "0 0 L * *",
        JAN_1,
        [utc(2024, 1, 31), utc(2024, 2, 29), utc(2024, 3, 31), utc(2024, 4, 30)],
    ),
    "last-day-of-february-2100-is-the-28th": (
        "0 0 L 2 *",
        utc(2099, 3, 1),
        [utc(2100, 2, 28), utc(2101, 2, 28), utc(2102, 2, 28), utc(2103, 2, 28), utc(2104, 2, 29)],
    ),
    "first-and-last": (
        "0 12 1,L * *",
        JAN_1,
        [utc(2024, 1, 1, 12), utc(2024, 1, 31, 12), utc(2024, 2, 1, 12), utc(2024, 2, 29, 12)],
    ),
    # 'L' is restricted, so with a restricted weekday either fires: Fridays 5, 12, 19,
    # 26 and the 31st, then Friday Feb 2.
    "last-day-or-friday": (
        "0 0 L * fri",
        JAN_1,
        [*days(2024, 1, 5, 12, 19, 26, 31), utc(2024, 2, 2)],
    ),
    # '*/7' (Sunday) starts with '*': the last day must be a Sunday. Jan 31 is a
    # Wednesday (+30), Feb 29 a Thursday, Mar 31 a Sunday (+90), Apr 30 a Tuesday, May 31
    # a Friday, Jun 30 a Sunday (+181).
    "last-day-and-sunday": ("0 0 L * */7", JAN_1, [utc(2024, 3, 31), utc(2024, 6, 30)]),
    "fifteenth-to-last": ("0 0 15-L 2 *", utc(2024, 2, 27), [utc(2024, 2, 28), utc(2024, 2, 29)]),
}

NTH_WEEKDAY_CASES: dict[str, tuple[str, datetime, list[datetime]]] = {
    # Day-of-month '*': only the occurrence decides. Mondays: Jan 1, 8; Feb 5, 12; Mar 4, 11.
    "second-monday": (
        "0 0 * * mon#2",
        JAN_1,
        [utc(2024, 1, 8), utc(2024, 2, 12), utc(2024, 3, 11)],
    ),
    # Fridays: Jan 5..26; Feb 2..23 (Feb 29 is a Thursday); Mar 1..29.
    "last-friday": ("0 0 * * L5", JAN_1, [utc(2024, 1, 26), utc(2024, 2, 23), utc(2024, 3, 29)]),
    # May 2024's Fridays are 3, ..., 24, 31: the 24th is not the last. June 1 (+152) is
    # a Saturday, so June's Fridays end on the 28th.
    "last-friday-on-the-31st": (
        "0 0 * * L5",
        utc(2024, 5, 1),
        [utc(2024, 5, 31), utc(2024, 6, 28)],
    ),
    "third-and-last-friday": (
        "0 0 * * 5#3,L5",
        JAN_1,
        [*days(2024, 1, 19, 26), *days(2024, 2, 16, 23), *days(2024, 3, 15, 29)],
    ),
    # A fifth Friday needs a month whose 29th-31st hold one: March (1, ..., 29) and May
    # (3, ..., 31); January, February and April have four.
    "fifth-friday": ("0 0 * * fri#5", JAN_1, [utc(2024, 3, 29), utc(2024, 5, 31)]),
    # 7 is Sunday here too: Jan 7, Feb 4, Mar 3.
    "first-sunday-as-7": (
        "0 0 * * 7#1",
        JAN_1,
        [utc(2024, 1, 7), utc(2024, 2, 4), utc(2024, 3, 3)],
    ),
    "second-monday-to-wednesday": (
        "0 0 * * mon-wed#2",
        JAN_1,
        [*days(2024, 1, 8, 9, 10), *days(2024, 2, 12, 13, 14)],
    ),
    # A 28-day February that starts on a Sunday: Sundays 1, 8, 15, 22; the 22nd is last.
    "last-sunday-of-a-28-day-february": ("0 0 * 2 L0", utc(2026, 1, 1), [utc(2026, 2, 22)]),
    # Five Sundays in February only when Feb 29 is a Sunday.
    "fifth-sunday-of-february": (
        "0 0 * 2 sun#5",
        utc(2024, 3, 1),
        [utc(2032, 2, 29), utc(2060, 2, 29)],
    ),
    # Both restricted: the 15th OR the first Monday (Jan 1, Feb 5, Mar 4).
    "fifteenth-or-first-monday": (
        "0 0 15 * mon#1",
        utc(2023, 12, 31),
        [*days(2024, 1, 1, 15), *days(2024, 2, 5, 15), *days(2024, 3, 4, 15)],
    ),
    # '*/2' starts with '*': the second Monday must fall on an odd day. Jan 8, Feb 12
    # and Apr 8 are even; Mar 11 and May 13 are odd.
    "second-monday-and-odd-day": ("0 0 */2 * mon#2", JAN_1, [utc(2024, 3, 11), utc(2024, 5, 13)]),
}


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [*LAST_DAY_CASES.values(), *NTH_WEEKDAY_CASES.values()],
    ids=[*LAST_DAY_CASES, *NTH_WEEKDAY_CASES],
)
def test_last_day_and_nth_weekday(
    expression: str, after: datetime, expected: list[datetime]
) -> None:
    assert next_times(cron(expression), after, len(expected)) == expected


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("0 0 L * *", "day-of-month last"),
        ("0 0 1,L * *", "day-of-month 1,last"),
        ("0 0 L * fri", "day-of-month last OR Friday"),
        ("0 0 * * mon#2", "2nd Monday"),
        ("0 0 * * 5#3,L5", "3rd Friday, last Friday"),
        ("0 0 15 * mon#1", "day-of-month 15 OR 1st Monday"),
        ("0 0 */2 * mon#2", "day-of-month 1-31/2 AND 2nd Monday"),
    ],
)
def test_describe_days_names_last_and_nth(expression: str, text: str) -> None:
    assert cron(expression).describe_days().startswith(text)


# --------------------------------------------------------------------------- hashed fields

# (expression, hash id, after, expected fire times)
HASHED_CASES: dict[str, tuple[str, str, datetime, list[datetime]]] = {
    "minute-reports": (
        "H * * * *",
        "reports",
        JAN_1,
        [utc(2024, 1, 1, 0, 13), utc(2024, 1, 1, 1, 13)],
    ),
    "minute-cleanup": (
        "H * * * *",
        "cleanup",
        JAN_1,
        [utc(2024, 1, 1, 0, 33), utc(2024, 1, 1, 1, 33)],
    ),
    "daily": ("H H * * *", "reports", JAN_1, [utc(2024, 1, 1, 18, 13), utc(2024, 1, 2, 18, 13)]),
    "every-15-reports": (
        "H/15 * * * *",
        "reports",
        JAN_1,
        [utc(2024, 1, 1, 0, m) for m in (13, 28, 43, 58)] + [utc(2024, 1, 1, 1, 13)],
    ),
    "every-15-cleanup": (
        "H/15 * * * *",
        "cleanup",
        JAN_1,
        [utc(2024, 1, 1, 0, m) for m in (3, 18, 33, 48)] + [utc(2024, 1, 1, 1, 3)],
    ),
    "range": (
        "H(40-59) 3 * * *",
        "reports",
        JAN_1,
        [utc(2024, 1, 1, 3, 53), utc(2024, 1, 2, 3, 53)],
    ),
    "six-fields-second": (
        "H * * * * *",
        "reports",
        JAN_1,
        [utc(2024, 1, 1, 0, 0, 34), utc(2024, 1, 1, 0, 1, 34)],
    ),
    # 'H/2' is '*/2' with a hashed start (even days here), so it ANDs with Mondays:
    # Jan 8, 22 and Feb 12, 26 (Jan 1, 15, 29 and Feb 5, 19 are odd).
    "day-step-ands-with-weekday": (
        "0 0 H/2 * mon",
        "reports",
        JAN_1,
        [*days(2024, 1, 8, 22), *days(2024, 2, 12, 26)],
    ),
}


@pytest.mark.parametrize(
    ("expression", "hash_id", "after", "expected"), HASHED_CASES.values(), ids=list(HASHED_CASES)
)
def test_hashed_fields(
    expression: str, hash_id: str, after: datetime, expected: list[datetime]
) -> None:
    assert next_times(cron(expression, hash_id=hash_id), after, len(expected)) == expected


def test_hashed_describe_carries_the_hash_id() -> None:
    assert (
        cron("H * * * *", hash_id="reports").describe() == "cron 'h * * * *' tz=UTC hash_id=reports"
    )
    # A hash id changes nothing without 'H' fields, so it is not part of the definition.
    assert cron("0 * * * *", hash_id="reports").describe() == "cron '0 * * * *' tz=UTC"


def test_hashed_without_hash_id_is_validated_but_cannot_run() -> None:
    unbound = cron("H * * * *")
    assert unbound.hashed
    with pytest.raises(ScheduleError, match="'H' fields, which hash the schedule's name"):
        unbound.next_after(JAN_1)
    with pytest.raises(ScheduleError, match="out of range 0-59"):
        cron("H(0-99) * * * *")


def test_scheduled_job_hashes_its_name() -> None:
    def handler(job: bgjobs.Job) -> None:
        pass

    reports = bgjobs.scheduled_job(bgjobs.worker("reports", handler), cron("H * * * *"))
    cleanup = bgjobs.scheduled_job(bgjobs.worker("cleanup", handler), cron("H * * * *"))
    registration = scheduling.registration(reports, "scheduled", JAN_1)
    assert registration.definition == "cron 'h * * * *' tz=UTC hash_id=reports"
    assert registration.first_run.available_at == utc(2024, 1, 1, 0, 13)
    assert cleanup.schedule.next_after(JAN_1) == utc(2024, 1, 1, 0, 33)
    # An explicit hash id wins; schedules without 'H' are left exactly as given.
    chosen = cron("H * * * *", hash_id="cleanup")
    assert bgjobs.scheduled_job(bgjobs.worker("reports", handler), chosen).schedule is chosen
    plain = cron("0 * * * *")
    assert with_hash_id(plain, "reports") is plain
    interval = every(minutes=5)
    assert with_hash_id(interval, "reports") is interval


def test_aliases_keep_their_classic_times_with_a_hash_id() -> None:
    # croniter alone would hash '@daily' given a hash id; bgjobs keeps midnight, so
    # existing '@daily' jobs do not move. 'H H * * *' asks for a spread time.
    start = utc(2024, 5, 15, 10, 30)
    daily = cron("@daily", hash_id="reports")
    assert not daily.hashed
    assert daily.next_after(start) == utc(2024, 5, 16)
    assert cron("@hourly", hash_id="reports").next_after(start) == utc(2024, 5, 15, 11)
    assert daily.describe() == "cron '@daily' tz=UTC"


def test_hashed_times_follow_the_dst_rule_like_their_unhashed_twins() -> None:
    # Paris falls back on 2026-10-25: 02:00-02:59 shows at 00:xxZ (CEST) then 01:xxZ (CET).
    # 'H 2' is 02:13, a fixed time: first pass only, unless on_repeat says otherwise.
    fixed = cron("H 2 * * *", "Europe/Paris", hash_id="reports")
    after = utc(2026, 10, 24, 12)
    assert next_times(fixed, after, 2) == [utc(2026, 10, 25, 0, 13), utc(2026, 10, 26, 1, 13)]
    both = cron("H 2 * * *", "Europe/Paris", on_repeat="both", hash_id="reports")
    assert next_times(both, after, 2) == [utc(2026, 10, 25, 0, 13), utc(2026, 10, 25, 1, 13)]
    # 'H/30' is '*/30' with a hashed start (13, 43): a wildcard minute, both passes.
    wildcard = cron("H/30 2 * * *", "Europe/Paris", hash_id="reports")
    assert next_times(wildcard, after, 4) == [
        utc(2026, 10, 25, 0, 13),
        utc(2026, 10, 25, 0, 43),
        utc(2026, 10, 25, 1, 13),
        utc(2026, 10, 25, 1, 43),
    ]
    with pytest.raises(ScheduleError, match="fixed times only"):
        cron("H/30 2 * * *", "Europe/Paris", on_repeat="both", hash_id="reports")


# --------------------------------------------------------------------------- classic meanings


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # croniter reads an equal range as the whole field; classic cron, one value.
        ("5-5 * * * *", JAN_1, [utc(2024, 1, 1, 0, 5), utc(2024, 1, 1, 1, 5)]),
        ("0 0 * * mon-mon", JAN_1, [utc(2024, 1, 8), utc(2024, 1, 15)]),
        ("0 0 1 jan-jan/3 *", JAN_1, [utc(2025, 1, 1)]),
        # croniter knows three-letter names only; full names still work.
        ("0 0 1 january-march *", JAN_1, [utc(2024, 2, 1), utc(2024, 3, 1), utc(2025, 1, 1)]),
        ("0 0 * * Saturday,SUNDAY", JAN_1, [utc(2024, 1, 6), utc(2024, 1, 7), utc(2024, 1, 13)]),
        # A start at the end of the range is that one value.
        ("59/15 * * * *", JAN_1, [utc(2024, 1, 1, 0, 59), utc(2024, 1, 1, 1, 59)]),
    ],
)
def test_classic_meanings_are_kept(
    expression: str, after: datetime, expected: list[datetime]
) -> None:
    assert next_times(cron(expression), after, len(expected)) == expected


def test_builder_goes_through_the_same_parse() -> None:
    built = schedule().on_days_of_week(["saturday", "sun"]).on_hour(6)
    assert built.cron_expression() == "0 0 6 * * 0,6"
    assert next_times(built, JAN_1, 2) == [utc(2024, 1, 6, 6), utc(2024, 1, 7, 6)]


# --------------------------------------------------------------------------- refusals

REFUSED: list[tuple[str, dict[str, Any], list[str]]] = [
    ("R * * * *", {}, ["'minute'", "random 'R'", "use 'H'"]),
    ("0 0 15W * *", {}, ["'day-of-month'", "'W'", "not supported"]),
    ("0 0 LW * *", {}, ["'day-of-month'", "'W'"]),
    ("0 0 * * 5L", {}, ["'day-of-week'", "'L5'"]),
    ("0 0 * * friL", {}, ["'day-of-week'", "'L5'"]),
    ("0 0 * * mon#2,fri", {}, ["'day-of-week'", "mixes", "'mon#2'"]),
    ("0 0 * * L5,1", {}, ["'day-of-week'", "mixes"]),
    ("0 0 * * mon#6", {}, ["'day-of-week'", "'mon#6'", "not valid"]),
    ("H,30 * * * *", {"hash_id": "reports"}, ["'minute'", "'H' must be the whole field"]),
    ("H/0 * * * *", {"hash_id": "reports"}, ["'minute'", "step '0'"]),
    ("H(10-5) * * * *", {"hash_id": "reports"}, ["'minute'", "greater than range begin"]),
    ("0 0 L * L", {}, ["'day-of-week'", "'l'", "not valid"]),
    ("0 0 * L *", {}, ["'month'", "not valid", "1-12"]),
    ("0 0 * * * 2030", {}, ["'day-of-week' value 2030 is out of range 0-7"]),
    ("1-61 * * * *", {}, ["'minute' value 61 is out of range 0-59"]),
    ("* * * * *", {"hash_id": 5}, ["'hash_id' must be a string"]),
]


@pytest.mark.parametrize(("expression", "options", "fragments"), REFUSED)
def test_refused_with_the_field_and_the_fix(
    expression: str, options: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ScheduleError) as info:
        cron(expression, **options)
    for fragment in fragments:
        assert fragment in str(info.value)
