"""`bgjobs schedules list|history|pause|resume|run`: through the database alone, next to a
running node (in-process here; tests/test_schedule_processes.py steers other processes), and
the schedule table of the live view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from tests.cli.conftest import APP_TARGET, Invoke, as_json, invoke_cli, ok
from tests.conftest import wait_until

import bgjobs
from bgjobs.adapters.base import Occurrence, ScheduleRecord
from bgjobs.cli.render import schedule_table
from bgjobs.runtime.app import ScheduleInfo

WIDE = {"COLUMNS": "200"}


@pytest.fixture
def ticking(database_url: str) -> Iterator[tuple[bgjobs.BgJobs, list[bgjobs.Job]]]:
    """A running node with an every-second schedule "tick" that has run at least twice."""
    calls: list[bgjobs.Job] = []
    bg = (
        bgjobs.new(database_url)
        .with_scheduled_job(
            bgjobs.scheduled_job(bgjobs.worker("tick", calls.append), bgjobs.every(seconds=1))
        )
        .build()
    )
    bg.start()
    try:
        wait_until(lambda: len(bg.schedule_history("tick")) >= 2, 30, "two recorded runs")
        yield bg, calls
    finally:
        bg.stop()
        bg.store.close()


def test_history_shows_each_due_time_with_node_lateness_and_outcome(
    ticking: tuple[bgjobs.BgJobs, list[bgjobs.Job]], invoke: Invoke
) -> None:
    bg, _ = ticking
    text = ok(invoke("schedules", "history", "tick", env=WIDE))
    assert "History of tick (newest first)" in text
    assert text.count("succeeded") >= 2 and bg.node_id in text
    header = next(line for line in text.splitlines() if line.startswith("due (UTC)"))
    assert header.split() == ["due", "(UTC)", "n", "outcome", "late", "took", "node"]
    records = as_json(invoke("schedules", "history", "tick", "--limit", "1", "--json"))
    assert len(records) == 1 and records[0]["schedule"] == "tick"
    assert records[0]["outcome"] in {"ran", "skipped_overlap", "coalesced"}


def test_pause_resume_and_run_from_the_command_line_steer_the_running_node(
    ticking: tuple[bgjobs.BgJobs, list[bgjobs.Job]], invoke: Invoke
) -> None:
    bg, calls = ticking
    assert ok(invoke("schedules", "pause", "tick", "--for", "1h")).startswith("paused tick until ")
    [info] = bg.schedules()
    assert info.paused and info.paused_until is not None
    listed = ok(invoke("schedules", "list", env=WIDE))
    assert "tick" in listed and "paused until" in listed
    wait_until(
        lambda: any(r.outcome is Occurrence.SKIPPED_PAUSED for r in bg.schedule_history("tick")),
        30,
        "an occurrence skipped while paused",
    )
    queued = ok(invoke("schedules", "run", "tick"))
    assert queued.startswith("queued run #") and "of tick on queue 'scheduled'" in queued
    wait_until(lambda: any(job.unique_key == "schedule-now:tick" for job in calls), 30, "run-now")
    resumed = ok(invoke("schedules", "resume", "tick"))
    assert resumed.startswith("resumed tick; next run ")
    assert not bg.schedules()[0].paused
    (listed_json,) = as_json(invoke("schedules", "list", "--json"))
    assert listed_json["name"] == "tick" and listed_json["paused"] is False


def test_steering_errors_name_the_problem(migrated: Invoke) -> None:
    unknown = migrated("schedules", "pause", "nope")
    assert unknown.exit_code == 1
    assert "no schedule named 'nope'" in unknown.stderr and "bgjobs run" in unknown.stderr
    both = migrated("schedules", "pause", "nope", "--for", "1h", "--until", "2030-01-01T00:00:00Z")
    assert both.exit_code == 2 and "either --for or --until" in both.stderr
    past = migrated("schedules", "pause", "nope", "--until", "2020-01-01T00:00:00Z")
    assert past.exit_code == 2 and "is not in the future" in past.stderr
    assert migrated("schedules", "history", "tick", "--limit", "0").exit_code == 2
    assert migrated("schedules", "run", "nope").exit_code == 1
    assert ok(migrated("schedules", "list")).startswith("no schedule is registered in ")


NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def render(table: object) -> str:
    console = Console(width=160, record=True, file=StringIO(), color_system=None)
    console.print(table)
    return console.export_text()


def test_the_schedule_table_shows_pause_removal_last_outcome_and_lateness() -> None:
    skipped = ScheduleRecord("a", Occurrence.SKIPPED_OVERLAP, NOW, job_id=12, recorded_at=NOW)
    ran = ScheduleRecord("b", Occurrence.RAN, NOW, result="failed", recorded_at=NOW, manual=True)
    rows = [
        ScheduleInfo(
            "a",
            "every 1s",
            "scheduled",
            NOW,
            False,
            None,
            "succeeded",
            last_due_at=NOW - timedelta(seconds=5),
            last_started_at=NOW - timedelta(seconds=5) + timedelta(milliseconds=4),
            paused=True,
            paused_until=NOW + timedelta(hours=1),
            last_record=skipped,
        ),
        ScheduleInfo(
            "b",
            "every 1h",
            "scheduled",
            None,
            False,
            None,
            "failed",
            last_record=ran,
            removed_at=NOW - timedelta(minutes=2),
        ),
        ScheduleInfo("c", "every 1d", "scheduled", NOW + timedelta(hours=3), False, None, None),
    ]
    lines = render(schedule_table(rows, NOW)).splitlines()
    header = next(line for line in lines if line.startswith("name"))
    assert header.split()[-3:] == ["last", "outcome", "late"]
    a = next(line for line in lines if line.startswith("a "))
    assert "paused until 2025-03-01 13:00:00" in a and "skipped: #12 still going now" in a
    assert a.rstrip().endswith("+4ms")
    b = next(line for line in lines if line.startswith("b "))
    assert "removed 2m ago" in b and "failed (run now)" in b and b.rstrip().endswith("-")
    c = next(line for line in lines if line.startswith("c "))
    assert "in 3h" in c and "never ran" in c


def test_the_old_form_schedules_target_still_lists(tmp_path: Path) -> None:
    """`bgjobs schedules TARGET` predates the subcommands; `list TARGET` is the same."""
    env = {**WIDE, "BGJOBS_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}"}  # not the repo's
    assert ok(invoke_cli("schedules", APP_TARGET, env=env)) == ok(
        invoke_cli("schedules", "list", APP_TARGET, env=env)
    )
    result = invoke_cli("schedules", "pasue", "x")
    assert result.exit_code == 2 and "No such command 'pasue'" in result.stderr
