"""`bgjobs cron`: the day rule line and the DST options."""

from __future__ import annotations

from datetime import datetime

from tests.cli.conftest import invoke_cli, ok


def fire_times(text: str) -> list[datetime]:
    """The UTC column of the preview table."""
    return [
        datetime.fromisoformat(" ".join(line.split()[5:7]))
        for line in text.splitlines()
        if line[:1].isdigit()
    ]


def test_cron_shows_how_the_day_fields_combine() -> None:
    text = ok(invoke_cli("cron", "0 0 1-7 * mon", "--count", "2"))
    assert "days: day-of-month 1-7 OR Monday" in text
    text = ok(invoke_cli("cron", "0 0 */2 * mon", "--count", "3"))
    assert "days: day-of-month 1-31/2 AND Monday" in text
    times = fire_times(text)
    assert len(times) == 3
    assert all(t.weekday() == 0 and t.day % 2 == 1 for t in times)
    assert "days: Monday-Friday" in ok(invoke_cli("cron", "0 9 * * mon-fri"))


def test_cron_dst_options() -> None:
    text = ok(invoke_cli("cron", "30 2 * * *", "--tz", "Europe/Paris", "--on-repeat", "both"))
    assert "cron '30 2 * * *' tz=Europe/Paris on_repeat=both" in text.replace("\n", " ")
    result = invoke_cli("cron", "*/5 * * * *", "--on-repeat", "second")
    assert result.exit_code == 2
    assert "on_repeat='second' applies to fixed times only" in result.output
    result = invoke_cli("cron", "* * * * *", "--on-gap", "later")
    assert result.exit_code == 2
    assert "'later' is not one of 'shift', 'skip'" in result.output


def test_cron_hashed_fields_need_a_name() -> None:
    # crc32(b"reports") % 60 = 13 (see test_cron_syntax.py): minute 13 of each hour.
    text = ok(invoke_cli("cron", "H * * * *", "--name", "reports", "--count", "3"))
    assert "cron 'h * * * *' tz=UTC hash_id=reports" in text.replace("\n", " ")
    times = fire_times(text)
    assert len(times) == 3
    assert all(t.minute == 13 for t in times)
    result = invoke_cli("cron", "H * * * *")
    assert result.exit_code == 2
    assert "'H' fields, which hash the schedule's name" in result.output
    assert "--name" in result.output
