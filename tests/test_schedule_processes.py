"""Schedules across real OS processes, on both backends: two nodes never run one schedule at once
and agree on the overlap choice through the database, and a schedule paused from another
process (the CLI, which has no app) stays paused across a node restart until resumed.

Node processes: tests/support/schedule_node.py (an every-second "tick" that records each run)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from itertools import pairwise
from subprocess import Popen

import pytest
from tests.cli.conftest import invoke_cli, ok
from tests.conftest import wait_until
from tests.support import schedule_node
from tests.support.procs import start_ready, stop_node

from bgjobs.adapters.base import Occurrence, ScheduleRecord
from bgjobs.adapters.urls import open_store

SECOND_US = 1_000_000


@contextmanager
def nodes(url: str, count: int, *args: str) -> Iterator[list[Popen[str]]]:
    started: list[Popen[str]] = []
    try:
        for _ in range(count):
            started.append(start_ready("tests.support.schedule_node", url, *args))
        yield started
    finally:
        for proc in started:
            stop_node(proc)


def history(url: str) -> list[ScheduleRecord]:
    store = open_store(url)
    try:
        return store.schedule_history("tick", 10_000)
    finally:
        store.close()


def assert_each_due_time_once(records: list[ScheduleRecord]) -> None:
    due: list[int] = []
    for record in records:
        if record.manual:
            continue
        assert record.occurrences is not None
        first = int(record.due_at.timestamp() * SECOND_US)
        due += [first + k * SECOND_US for k in range(record.occurrences)]
    due.sort()
    assert due == list(range(due[0], due[0] + len(due) * SECOND_US, SECOND_US)), (
        f"each due time exactly once: {[r.outcome.value for r in records]}"
    )


@pytest.mark.parametrize("overlap", ["skip", "queue"])
def test_two_nodes_never_overlap_a_run_longer_than_its_interval(
    database_url: str, overlap: str
) -> None:
    schedule_node.setup(database_url)
    with nodes(database_url, 2, "--sleep", "1.3", "--overlap", overlap):
        wait_until(lambda: len(schedule_node.runs(database_url)) >= 3, 90, "three runs")
    runs = schedule_node.runs(database_url)
    for (_, _, _, end, a), (_, _, start, _, b) in pairwise(runs):
        assert start >= end, f"runs overlapped (nodes {a} and {b}): {runs}"
    records = history(database_url)
    ran = [r for r in records if r.outcome is Occurrence.RAN]
    assert {r.job_id for r in ran} >= {job_id for job_id, *_ in runs[:-1]}
    outcomes = {r.outcome for r in records}
    if overlap == "skip":
        assert Occurrence.SKIPPED_OVERLAP in outcomes
        assert all(due % SECOND_US == 0 for _, due, *_ in runs), "every run on the grid"
    else:
        assert Occurrence.SKIPPED_OVERLAP not in outcomes
        # Queued: each run starts as soon as the previous one ended, on whichever node.
        gaps = [start - end for (_, _, _, end, _), (_, _, start, _, _) in pairwise(runs)]
        assert max(gaps) < 3 * SECOND_US, gaps
    assert_each_due_time_once(records)


def test_a_pause_from_another_process_holds_across_a_restart_until_resumed(
    database_url: str,
) -> None:
    schedule_node.setup(database_url)
    env = {"BGJOBS_DATABASE_URL": database_url}

    def skipped() -> int:
        return sum(r.outcome is Occurrence.SKIPPED_PAUSED for r in history(database_url))

    with nodes(database_url, 1):
        wait_until(lambda: schedule_node.runs(database_url), 60, "a first run")
        ok(invoke_cli("schedules", "pause", "tick", env=env))
        wait_until(lambda: skipped() >= 2, 60, "occurrences skipped while paused")
    ran_before = len(schedule_node.runs(database_url))
    with nodes(database_url, 1):  # a restart (or a deploy) keeps the pause
        seen = skipped()
        wait_until(lambda: skipped() >= seen + 2, 60, "still skipping after the restart")
        assert len(schedule_node.runs(database_url)) <= ran_before + 1, "nothing ran paused"
        ok(invoke_cli("schedules", "resume", "tick", env=env))
        wait_until(
            lambda: len(schedule_node.runs(database_url)) >= ran_before + 2, 60, "runs again"
        )
    records = history(database_url)
    assert_each_due_time_once(records)
    resumed = next(r for r in records if r.outcome is Occurrence.RAN)  # newest first
    assert resumed.lateness is not None and resumed.lateness < timedelta(seconds=5)
