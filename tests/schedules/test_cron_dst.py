"""Cron schedules across DST transitions, with hand-worked expected instants.

Every expected instant is written in UTC and its comment gives the local wall time and
why it fires. The transitions (tzdata; 2026):

* Europe/Paris  -- spring 03-29 01:00Z: 02:00 CET (+1) jumps to 03:00 CEST (+2), so
  02:00-02:59 never shows. Fall 10-25 01:00Z: 03:00 CEST falls back to 02:00 CET, so
  02:00-02:59 shows twice: first pass 00:00-00:59Z (CEST), second 01:00-01:59Z (CET).
* America/New_York -- spring 03-08 07:00Z: 02:00 EST (-5) -> 03:00 EDT (-4). Fall
  11-01 06:00Z: 02:00 EDT -> 01:00 EST; 01:00-01:59 shows at 05:xxZ (EDT) then 06:xxZ.
* Australia/Sydney (southern hemisphere, so the order is reversed) -- fall 04-05
  (04-04 16:00Z): 03:00 AEDT (+11) -> 02:00 AEST (+10); 02:00-02:59 shows at 15:xxZ
  then 16:xxZ on 04-04. Spring 10-04 (10-03 16:00Z): 02:00 AEST -> 03:00 AEDT.
* Asia/Kolkata -- +05:30 all year, no DST: the choices change nothing.

The rule (Debian cron): a *fixed* time (minute and hour not written with '*') repeated
by a fall-back fires once (``on_repeat``: first by default, or second, or both); a
*wildcard* time (minute or hour written with '*') fires through both passes of the
repeated hour. A time skipped by a spring-forward fires at the first instant after the
gap (``on_gap="shift"``, default) or not at all (``on_gap="skip"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from tests.schedules.times import utc

from bgjobs.errors import ScheduleError
from bgjobs.schedules import cron, next_times, schedule

PARIS, NEW_YORK, SYDNEY, KOLKATA = (
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
)


# (expression, tz, DST choices, after, expected fire times)
Case = tuple[str, str, dict[str, Any], datetime, list[datetime]]

FALL_BACK_CASES: dict[str, Case] = {
    # Wildcard minute: a minute job keeps running through both 02:xx passes.
    "fall-paris-every-minute": (
        "* * * * *",
        PARIS,
        {},
        utc(2026, 10, 25, 0, 58),
        [
            utc(2026, 10, 25, 0, 59),  # 02:59 CEST, end of the first pass
            utc(2026, 10, 25, 1, 0),  # 02:00 CET, the second pass begins
            utc(2026, 10, 25, 1, 1),  # 02:01 CET
        ],
    ),
    # `after` inside the second pass: the next minute, not 03:00 CET.
    "fall-new-york-every-minute-from-second-pass": (
        "* * * * *",
        NEW_YORK,
        {},
        utc(2026, 11, 1, 6, 10, 30),  # 01:10:30 EST
        [utc(2026, 11, 1, 6, 11), utc(2026, 11, 1, 6, 12)],  # 01:11, 01:12 EST
    ),
    # Stepped minute.
    "fall-paris-every-20-minutes": (
        "*/20 * * * *",
        PARIS,
        {},
        utc(2026, 10, 25, 0, 30),
        [
            utc(2026, 10, 25, 0, 40),  # 02:40 CEST
            utc(2026, 10, 25, 1, 0),  # 02:00 CET
            utc(2026, 10, 25, 1, 20),  # 02:20 CET
            utc(2026, 10, 25, 1, 40),  # 02:40 CET
            utc(2026, 10, 25, 2, 0),  # 03:00 CET
        ],
    ),
    # Wildcard hour, fixed minute: hourly keeps an hourly real-time cadence.
    "fall-new-york-hourly": (
        "0 * * * *",
        NEW_YORK,
        {},
        utc(2026, 11, 1, 4, 30),
        [
            utc(2026, 11, 1, 5, 0),  # 01:00 EDT
            utc(2026, 11, 1, 6, 0),  # 01:00 EST, the repeat
            utc(2026, 11, 1, 7, 0),  # 02:00 EST
        ],
    ),
    "fall-paris-hourly-alias": (
        "@hourly",
        PARIS,
        {},
        utc(2026, 10, 24, 23, 30),
        [
            utc(2026, 10, 25, 0, 0),  # 02:00 CEST
            utc(2026, 10, 25, 1, 0),  # 02:00 CET
            utc(2026, 10, 25, 2, 0),  # 03:00 CET
        ],
    ),
    # Stepped hour, fixed minute: '*/2' is a wildcard hour, so 02:15 runs twice.
    "fall-paris-stepped-hour": (
        "15 */2 * * *",
        PARIS,
        {},
        utc(2026, 10, 24, 21, 0),  # 23:00 CEST
        [
            utc(2026, 10, 24, 22, 15),  # 00:15 CEST
            utc(2026, 10, 25, 0, 15),  # 02:15 CEST
            utc(2026, 10, 25, 1, 15),  # 02:15 CET
            utc(2026, 10, 25, 3, 15),  # 04:15 CET
        ],
    ),
    # Stepped minute inside a fixed hour: still a wildcard job (minute starts with '*').
    "fall-paris-stepped-minute-fixed-hour": (
        "*/30 2 * * *",
        PARIS,
        {},
        utc(2026, 10, 24, 12),
        [
            utc(2026, 10, 25, 0, 0),  # 02:00 CEST
            utc(2026, 10, 25, 0, 30),  # 02:30 CEST
            utc(2026, 10, 25, 1, 0),  # 02:00 CET
            utc(2026, 10, 25, 1, 30),  # 02:30 CET
            utc(2026, 10, 26, 1, 0),  # next day 02:00 CET
        ],
    ),
    # Fixed time, default: first occurrence only.
    "fall-paris-fixed-first": (
        "30 2 * * *",
        PARIS,
        {},
        utc(2026, 10, 24, 12),
        [
            utc(2026, 10, 25, 0, 30),  # 02:30 CEST; not again at 02:30 CET
            utc(2026, 10, 26, 1, 30),  # next day 02:30 CET
        ],
    ),
    # A fixed list of minutes in a fixed hour is still fixed.
    "fall-paris-fixed-list-first": (
        "0,30 2 * * *",
        PARIS,
        {},
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 0)],
    ),
    # An hour range is fixed (it does not start with '*'): 02:00 runs once.
    "fall-paris-hour-range-first": (
        "0 1-3 * * *",
        PARIS,
        {},
        utc(2026, 10, 24, 22, 30),  # 00:30 CEST
        [
            utc(2026, 10, 24, 23, 0),  # 01:00 CEST
            utc(2026, 10, 25, 0, 0),  # 02:00 CEST (first pass only)
            utc(2026, 10, 25, 2, 0),  # 03:00 CET
        ],
    ),
    "fall-paris-fixed-second": (
        "30 2 * * *",
        PARIS,
        {"on_repeat": "second"},
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 1, 30)],  # 02:30 CET both days
    ),
    "fall-paris-fixed-both": (
        "30 2 * * *",
        PARIS,
        {"on_repeat": "both"},
        utc(2026, 10, 24, 12),
        [
            utc(2026, 10, 25, 0, 30),  # 02:30 CEST
            utc(2026, 10, 25, 1, 30),  # 02:30 CET
            utc(2026, 10, 26, 1, 30),
        ],
    ),
    "fall-new-york-fixed-first": (
        "30 1 * * *",
        NEW_YORK,
        {},
        utc(2026, 10, 31, 12),
        [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],  # 01:30 EDT, then 01:30 EST
    ),
    # `after` in the second pass, default: the first occurrence is past, so tomorrow.
    "fall-new-york-fixed-first-from-second-pass": (
        "30 1 * * *",
        NEW_YORK,
        {},
        utc(2026, 11, 1, 6, 10),  # 01:10 EST
        [utc(2026, 11, 2, 6, 30)],
    ),
    # `after` at 01:45 EDT (first pass), later on the wall than 01:30: 01:30 EST is
    # still 45 minutes ahead in real time.
    "fall-new-york-fixed-second-from-first-pass": (
        "30 1 * * *",
        NEW_YORK,
        {"on_repeat": "second"},
        utc(2026, 11, 1, 5, 45),
        [utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6, 30)],
    ),
    # Exactly at the first occurrence: the second one is next.
    "fall-new-york-fixed-both-from-first": (
        "30 1 * * *",
        NEW_YORK,
        {"on_repeat": "both"},
        utc(2026, 11, 1, 5, 30),
        [utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6, 30)],
    ),
    "fall-sydney-every-30-minutes": (
        "*/30 * * * *",
        SYDNEY,
        {},
        utc(2026, 4, 4, 14, 45),  # 01:45 AEDT on 04-05
        [
            utc(2026, 4, 4, 15, 0),  # 02:00 AEDT
            utc(2026, 4, 4, 15, 30),  # 02:30 AEDT
            utc(2026, 4, 4, 16, 0),  # 02:00 AEST
            utc(2026, 4, 4, 16, 30),  # 02:30 AEST
            utc(2026, 4, 4, 17, 0),  # 03:00 AEST
        ],
    ),
    "fall-sydney-fixed-first": (
        "0 2 * * *",
        SYDNEY,
        {},
        utc(2026, 4, 4, 12),
        [utc(2026, 4, 4, 15, 0), utc(2026, 4, 5, 16, 0)],  # 02:00 AEDT, next day AEST
    ),
    "fall-sydney-fixed-both": (
        "0 2 * * *",
        SYDNEY,
        {"on_repeat": "both"},
        utc(2026, 4, 4, 12),
        [utc(2026, 4, 4, 15, 0), utc(2026, 4, 4, 16, 0), utc(2026, 4, 5, 16, 0)],
    ),
    # 6 fields: a burst of seconds inside a fixed minute is a fixed time (runs once).
    "fall-paris-seconds-in-fixed-minute": (
        "*/20 30 2 * * *",
        PARIS,
        {},
        utc(2026, 10, 25, 0, 30, 30),  # 02:30:30 CEST
        [utc(2026, 10, 25, 0, 30, 40), utc(2026, 10, 26, 1, 30, 0)],
    ),
}

SPRING_FORWARD_CASES: dict[str, Case] = {
    # Fixed time in the gap, default: runs at 03:00 CEST, the first instant after it.
    "spring-paris-fixed-shift": (
        "30 2 * * *",
        PARIS,
        {},
        utc(2026, 3, 28, 12),
        [
            utc(2026, 3, 29, 1, 0),  # 03:00 CEST (02:30 never shows)
            utc(2026, 3, 30, 0, 30),  # next day 02:30 CEST
        ],
    ),
    "spring-paris-fixed-skip": (
        "30 2 * * *",
        PARIS,
        {"on_gap": "skip"},
        utc(2026, 3, 28, 12),
        [utc(2026, 3, 30, 0, 30)],  # nothing on the 29th
    ),
    # Wildcard minute: nothing is lost in real time; 03:00 CEST follows 01:59 CET.
    "spring-paris-every-minute": (
        "* * * * *",
        PARIS,
        {},
        utc(2026, 3, 29, 0, 58),  # 01:58 CET
        [utc(2026, 3, 29, 0, 59), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 1)],
    ),
    # Stepped minute: 02:00..02:45 collapse into one run at 03:00, the regular 03:00 run.
    "spring-paris-every-15-minutes-shift": (
        "*/15 * * * *",
        PARIS,
        {},
        utc(2026, 3, 29, 0, 50),  # 01:50 CET
        [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 15)],  # 03:00, 03:15 CEST
    ),
    "spring-paris-every-15-minutes-skip": (
        "*/15 * * * *",
        PARIS,
        {"on_gap": "skip"},
        utc(2026, 3, 29, 0, 50),
        [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 15)],  # same: 03:00 is a real match
    ),
    # Wildcard hour, fixed minute: 02:30 moves to 03:00 CEST (shift) or is dropped.
    "spring-paris-hourly-at-30-shift": (
        "30 * * * *",
        PARIS,
        {},
        utc(2026, 3, 29, 0, 0),  # 01:00 CET
        [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30)],
    ),
    "spring-paris-hourly-at-30-skip": (
        "30 * * * *",
        PARIS,
        {"on_gap": "skip"},
        utc(2026, 3, 29, 0, 0),
        [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30)],  # 01:30 CET, 03:30 CEST
    ),
    # Stepped hour: 02:00 is in the gap.
    "spring-paris-every-2-hours-skip": (
        "0 */2 * * *",
        PARIS,
        {"on_gap": "skip"},
        utc(2026, 3, 28, 23, 30),  # 00:30 CET
        [utc(2026, 3, 29, 2, 0)],  # 04:00 CEST
    ),
    "spring-paris-every-2-hours-shift": (
        "0 */2 * * *",
        PARIS,
        {},
        utc(2026, 3, 28, 23, 30),
        [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)],  # 03:00 CEST (shifted), 04:00
    ),
    "spring-new-york-fixed-shift": (
        "30 2 * * *",
        NEW_YORK,
        {},
        utc(2026, 3, 7, 0),
        [
            utc(2026, 3, 7, 7, 30),  # 02:30 EST
            utc(2026, 3, 8, 7, 0),  # 03:00 EDT (02:30 never shows)
            utc(2026, 3, 9, 6, 30),  # 02:30 EDT
        ],
    ),
    "spring-new-york-fixed-skip": (
        "30 2 * * *",
        NEW_YORK,
        {"on_gap": "skip"},
        utc(2026, 3, 7, 0),
        [utc(2026, 3, 7, 7, 30), utc(2026, 3, 9, 6, 30)],
    ),
    # Every 10 minutes inside the vanished hour: one shifted run, or none.
    "spring-new-york-stepped-minute-in-gap-shift": (
        "*/10 2 * * *",
        NEW_YORK,
        {},
        utc(2026, 3, 8, 6, 55),  # 01:55 EST
        [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 0)],  # 03:00 EDT; next day 02:00 EDT
    ),
    "spring-new-york-stepped-minute-in-gap-skip": (
        "*/10 2 * * *",
        NEW_YORK,
        {"on_gap": "skip"},
        utc(2026, 3, 8, 6, 55),
        [utc(2026, 3, 9, 6, 0)],
    ),
    "spring-sydney-fixed-shift": (
        "0 2 * * *",
        SYDNEY,
        {},
        utc(2026, 10, 2, 12),
        [
            utc(2026, 10, 2, 16, 0),  # 10-03 02:00 AEST
            utc(2026, 10, 3, 16, 0),  # 10-04 03:00 AEDT (02:00 never shows)
            utc(2026, 10, 4, 15, 0),  # 10-05 02:00 AEDT
        ],
    ),
    "spring-sydney-fixed-skip": (
        "0 2 * * *",
        SYDNEY,
        {"on_gap": "skip"},
        utc(2026, 10, 2, 12),
        [utc(2026, 10, 2, 16, 0), utc(2026, 10, 4, 15, 0)],
    ),
    "spring-sydney-hourly-at-15-skip": (
        "15 * * * *",
        SYDNEY,
        {"on_gap": "skip"},
        utc(2026, 10, 3, 15, 0),  # 01:00 AEST
        [utc(2026, 10, 3, 15, 15), utc(2026, 10, 3, 16, 15)],  # 01:15 AEST, 03:15 AEDT
    ),
}

NO_DST_CASES: dict[str, Case] = {
    # Kolkata is +05:30 all year; choices have nothing to act on.
    "kolkata-fixed-all-choices": (
        "30 2 * * *",
        KOLKATA,
        {"on_gap": "skip", "on_repeat": "both"},
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 24, 21, 0), utc(2026, 10, 25, 21, 0)],  # 02:30 IST = 21:00Z
    ),
    "kolkata-midnight-on-paris-fall-day": (
        "0 0 * * *",
        KOLKATA,
        {"on_repeat": "second"},
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 24, 18, 30), utc(2026, 10, 25, 18, 30)],
    ),
    "kolkata-every-minute": (
        "* * * * *",
        KOLKATA,
        {"on_gap": "skip"},
        utc(2026, 3, 29, 0, 59),
        [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 1)],
    ),
    "utc-fixed-all-choices": (
        "30 2 * * *",
        "UTC",
        {"on_gap": "skip", "on_repeat": "second"},
        utc(2026, 3, 28, 12),
        [utc(2026, 3, 29, 2, 30), utc(2026, 3, 30, 2, 30)],
    ),
}

ALL_CASES = {**FALL_BACK_CASES, **SPRING_FORWARD_CASES, **NO_DST_CASES}
assert len(ALL_CASES) == len(FALL_BACK_CASES) + len(SPRING_FORWARD_CASES) + len(NO_DST_CASES)


@pytest.mark.parametrize(
    ("expression", "tz", "choices", "after", "expected"),
    list(ALL_CASES.values()),
    ids=list(ALL_CASES),
)
def test_dst_table(
    expression: str, tz: str, choices: dict[str, Any], after: datetime, expected: list[datetime]
) -> None:
    assert next_times(cron(expression, tz, **choices), after, len(expected)) == expected


def test_every_second_through_a_repeated_hour() -> None:
    every_second = cron("* * * * * *", PARIS)
    # Last second of the first pass, then the first second of the second pass.
    assert next_times(every_second, utc(2026, 10, 25, 0, 59, 58), 3) == [
        utc(2026, 10, 25, 0, 59, 59),  # 02:59:59 CEST
        utc(2026, 10, 25, 1, 0, 0),  # 02:00:00 CET
        utc(2026, 10, 25, 1, 0, 1),
    ]
    # Sub-second `after` inside the second pass: still strictly after.
    assert every_second.next_after(utc(2026, 10, 25, 1, 30).replace(microsecond=500)) == utc(
        2026, 10, 25, 1, 30, 1
    )


def test_every_second_through_a_gap() -> None:
    every_second = cron("* * * * * *", PARIS, on_gap="skip")
    # 00:59:59Z = 01:59:59 CET; the next second on the clock is 03:00:00 CEST = 01:00:00Z.
    assert next_times(every_second, utc(2026, 3, 29, 0, 59, 58), 3) == [
        utc(2026, 3, 29, 0, 59, 59),
        utc(2026, 3, 29, 1, 0, 0),
        utc(2026, 3, 29, 1, 0, 1),
    ]


def test_builder_carries_the_choices() -> None:
    built = schedule().on_hour(1).on_minute(30).in_timezone(NEW_YORK).with_dst(on_repeat="both")
    assert next_times(built, utc(2026, 10, 31, 12), 3) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 6, 30),  # 01:30 EST
        utc(2026, 11, 2, 6, 30),
    ]
    assert built.to_cron() == cron("0 30 1 * * *", NEW_YORK, on_repeat="both")
    skipping = schedule().on_hour(2).on_minute(30).in_timezone(NEW_YORK).with_dst(on_gap="skip")
    assert next_times(skipping, utc(2026, 3, 7, 12), 1) == [utc(2026, 3, 9, 6, 30)]
    # with_dst() leaves unnamed choices alone.
    assert skipping.with_dst(on_repeat="second").on_gap == "skip"


def test_on_repeat_is_rejected_where_it_cannot_apply() -> None:
    with pytest.raises(ScheduleError, match=r"on_repeat='both' applies to fixed times only"):
        cron("*/5 * * * *", PARIS, on_repeat="both")
    with pytest.raises(ScheduleError, match=r"'0-23/2' instead of '\*/2'"):
        cron("0 */2 * * *", PARIS, on_repeat="second")
    # The suggested rewrite is a fixed time and accepts the choice.
    assert cron("0 0-23/2 * * *", PARIS, on_repeat="second").next_after(
        utc(2026, 10, 24, 23, 30)
    ) == utc(2026, 10, 25, 1, 0)  # 02:00 CET, not 02:00 CEST
    with pytest.raises(ScheduleError, match="applies to fixed times only"):
        schedule().every_minute(5).with_dst(on_repeat="both").to_cron()


def test_describe_includes_non_default_choices() -> None:
    assert cron("30 2 * * *", PARIS).describe() == "cron '30 2 * * *' tz=Europe/Paris"
    assert (
        cron("30 2 * * *", PARIS, on_gap="shift", on_repeat="first").describe()
        == "cron '30 2 * * *' tz=Europe/Paris"
    )
    assert (
        cron("30 2 * * *", PARIS, on_gap="skip", on_repeat="both").describe()
        == "cron '30 2 * * *' tz=Europe/Paris on_gap=skip on_repeat=both"
    )
    descriptions = {
        cron("30 2 * * *", PARIS, on_gap=gap, on_repeat=repeat).describe()
        for gap in ("shift", "skip")
        for repeat in ("first", "second", "both")
    }
    assert len(descriptions) == 6
    built = schedule().on_hour(2).in_timezone(PARIS).with_dst(on_repeat="second")
    assert built.describe() == "cron '0 0 2 * * *' tz=Europe/Paris on_repeat=second"
