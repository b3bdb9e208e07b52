"""Several OS processes on one database: every job and every occurrence runs exactly once."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from tests.conftest import wait_until
from tests.support import results
from tests.support.procs import nodes, producer, stop_node

import bgjobs
from bgjobs.adapters.base import JobFilter

pytestmark = pytest.mark.slow


def test_two_processes_drain_one_sqlite_file_exactly_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    bg = producer(url)
    bg.enqueue_many([("work", {"n": n}) for n in range(2000)])
    results.setup(url)
    with nodes(url, "drain", 2) as procs:
        wait_until(lambda: len(results.rows(url, "drain")) >= 2000, 60, "2000 jobs recorded")
        codes = [stop_node(p) for p in procs]
    assert codes == [0, 0]
    done = results.rows(url, "drain")
    ids = [row[0] for row in done]
    assert len(ids) == 2000 and len(set(ids)) == 2000, "each job ran exactly once"
    assert len({row[2] for row in done}) == 2, "both processes did work"
    assert bg.store.list_jobs(JobFilter(state=bgjobs.JobState.AVAILABLE)) == []


def test_every_second_schedule_runs_each_occurrence_once_across_nodes(
    backend: str, database_url: str
) -> None:
    count = 3 if backend == "postgres" else 2
    results.setup(database_url)
    with nodes(database_url, "tick", count):
        wait_until(lambda: len(results.rows(database_url, "tick")) >= 15, 60, "15 occurrences")
    runs = results.rows(database_url, "tick")
    dues = [row[1] for row in runs]
    assert len(dues) >= 15, f"expected at least 15 occurrences, got {len(dues)}"
    assert len(set(dues)) == len(dues), "an occurrence ran twice"
    gaps = {b - a for a, b in pairwise(dues)}
    assert gaps == {1_000_000}, f"occurrences must be 1 s apart with no gaps, saw {gaps}"


def test_idle_node_in_another_process_wakes_without_waiting_for_the_poll(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Cross-process wake-up on SQLite (PRAGMA data_version), poll interval set to 5 s."""
    url = f"sqlite:///{tmp_path / 'wake.db'}"
    results.setup(url)
    bg = producer(url)
    with nodes(url, "drain", 1, "--poll", "5"):
        for n in range(3):
            enqueued = time.monotonic()
            bg.enqueue("work", {"n": n})
            wait_until(lambda n=n: len(results.rows(url, "drain")) > n, 10)
            # Functional, not a latency target (that is bench/): the 5 s poll was not waited for.
            assert time.monotonic() - enqueued < 4.0, "picked up before the 5 s poll"
