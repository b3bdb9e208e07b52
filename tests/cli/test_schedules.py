"""`bgjobs schedules TARGET` and `bgjobs cron EXPR`."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from tests.cli.conftest import APP, APP_TARGET, Invoke, as_json, invoke_cli, ok

from bgjobs.cli.loading import load_runtime


def test_schedules_before_and_after_the_app_ran(
    database_url: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = {"COLUMNS": "200"}  # one line per schedule, whatever the terminal
    before = ok(invoke("schedules", APP_TARGET, env=wide))
    assert "cleanup" in before and "cron '*/10 * * * * *' tz=UTC" in before.replace("\n", " ")
    assert "never ran" in before and "until `bgjobs run` registers the schedule" in before

    monkeypatch.setenv("BGJOBS_DATABASE_URL", database_url)
    bg = load_runtime(f"{APP}:bg")
    bg.start()  # registers the next run
    bg.stop()
    bg.store.close()

    (info,) = as_json(invoke("schedules", APP_TARGET, "--json"))
    assert (info["name"], info["queue"], info["running"]) == ("cleanup", "scheduled", False)
    next_run = datetime.fromisoformat(info["next_run_at"])
    assert next_run.second % 10 == 0
    after = ok(invoke("schedules", APP_TARGET, env=wide))
    assert "until `bgjobs run`" not in after
    assert next_run.strftime("%Y-%m-%d %H:%M:%S") in after


def test_schedules_of_an_app_without_any(tmp_path: Path) -> None:
    app = tmp_path / "plain_app.py"
    app.write_text(
        "import bgjobs\n"
        f"bg = bgjobs.new(bgjobs.sqlite({str(tmp_path / 'x.db')!r})).with_queue(\n"
        "    bgjobs.queue('q').with_worker(bgjobs.worker('w', print))).build()\n"
    )
    assert ok(invoke_cli("schedules", f"{app}:bg")) == f"{app}:bg has no scheduled jobs\n"


def test_cron_preview() -> None:
    text = ok(invoke_cli("cron", "*/15 9-17 * * mon-fri", "--tz", "Europe/Paris", "--count", "3"))
    assert "cron '*/15 9-17 * * mon-fri' tz=Europe/Paris" in text
    rows = [line for line in text.splitlines() if line[:1].isdigit()]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]
    for row in rows:
        weekday, _day, local = row.split()[1:4]
        assert weekday in {"Mon", "Tue", "Wed", "Thu", "Fri"}
        assert 9 <= int(local[:2]) <= 17 and local[3:5] in {"00", "15", "30", "45"}


def test_cron_accepts_seconds_first() -> None:
    text = ok(invoke_cli("cron", "*/10 * * * * *", "--count", "4"))
    times = [
        datetime.fromisoformat(" ".join(line.split()[5:7]))
        for line in text.splitlines()
        if line[:1].isdigit()
    ]
    assert len(times) == 4
    assert all(b - a == timedelta(seconds=10) for a, b in pairwise(times))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["61 * * * *"], "field 'minute' value 61 is out of range 0-59"),
        (["0 24 * * *"], "field 'hour'"),
        (["1 2 3"], "has 3 fields; expected 5"),
        (["@daily", "--tz", "Mars/Base"], "time zone 'Mars/Base' is unknown"),
    ],
)
def test_bad_cron_names_the_problem(args: list[str], message: str) -> None:
    result = invoke_cli("cron", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
