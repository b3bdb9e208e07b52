"""Live nodes that define one scheduled job differently: a ScheduleConflict warning (event and
log line), and the newest node's definition is the one that runs, until that node stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs.adapters.base import NodeInfo, Store
from bgjobs.events import ScheduleConflict
from bgjobs.runtime.schedule_conflicts import conflicts
from bgjobs.schedules import Schedule

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WHOLE = bgjobs.every(seconds=1)  # fires on whole seconds
HALF = bgjobs.every(seconds=1, start=EPOCH + timedelta(seconds=0.5))  # the same cadence, at .5


def node(node_id: str, started: int, **schedules: str) -> NodeInfo:
    at = EPOCH + timedelta(seconds=started)
    return NodeInfo(node_id, "h", 1, at, at, (), {}, schedules)


def test_the_newest_nodes_definition_wins() -> None:
    old = node("h:1:a", 10, tick="every 1m", report="cron '0 9 * * *' tz=UTC")
    new = node("h:2:b", 20, tick="every 5m", report="cron '0 9 * * *' tz=UTC")
    also_new = node("h:3:c", 20, tick="every 5m")
    (found,) = conflicts([old, new, also_new])
    assert found.schedule == "tick" and found.winner == "every 5m"
    assert found.definitions == (
        ("h:1:a", "every 1m"),
        ("h:2:b", "every 5m"),
        ("h:3:c", "every 5m"),
    )
    # Started at the same time: the larger node id wins, so every node decides alike.
    tie = conflicts([node("h:9:z", 5, tick="every 1m"), node("h:1:a", 5, tick="every 2m")])
    assert tie[0].winner == "every 1m"
    assert conflicts([old, node("h:4:d", 30)]) == [], "a node without the schedule agrees"


def test_live_nodes_that_disagree_warn_and_the_newest_definition_runs(
    store_factory: Callable[..., Store], caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[tuple[str, datetime]] = []
    lock = threading.Lock()

    def runtime(label: str, schedule: Schedule, recorder: Recorder) -> bgjobs.BgJobs:
        def tick(job: bgjobs.Job) -> None:
            with lock:
                runs.append((label, job.scheduled_at))

        return (
            bgjobs.new(store_factory())
            .with_event_listener(recorder)
            .with_event_listener(bgjobs.logging_listener())
            .with_heartbeat(0.2, 2.0)
            .with_scheduled_job(bgjobs.scheduled_job(bgjobs.worker("tick", tick), schedule))
            .build()
        )

    def ran_by(label: str, after: datetime) -> list[datetime]:
        with lock:
            return [due for who, due in runs if who == label and due > after]

    old_events, new_events = Recorder(), Recorder()
    old = runtime("old", HALF, old_events).start()
    try:
        wait_until(lambda: ran_by("old", EPOCH), 10, "the old node to run tick")
        with caplog.at_level(logging.WARNING, logger="bgjobs"):
            new = runtime("new", WHOLE, new_events).start()
            try:
                (at_start,) = new_events.of(ScheduleConflict)  # noticed as it registered
                assert at_start.winner == "every 1s"
                assert sorted(d for _, d in at_start.definitions) == sorted(
                    [HALF.describe(), "every 1s"]
                )
                wait_until(lambda: old_events.of(ScheduleConflict), 10, "the old node to notice")
                noticed = old_events.of(ScheduleConflict)[0]
                assert noticed.definitions == at_start.definitions
                # Past the run in flight when it noticed, only the new node runs, on its grid.
                settled = noticed.at + timedelta(seconds=1)
                wait_until(lambda: len(ran_by("new", settled)) >= 2, 20, "two new runs")
                assert ran_by("old", settled) == [], "the old node defers to the newer one"
                assert {due.microsecond for due in ran_by("new", settled)} == {0}
            finally:
                new.stop()
                new.store.close()
        stopped = datetime.now(UTC)
        # The winner gone, the old node runs the schedule again, back on its own grid.
        wait_until(lambda: any(d.microsecond for d in ran_by("old", stopped)), 20, "old again")
    finally:
        old.stop()
        old.store.close()
    assert len(old_events.of(ScheduleConflict)) == 1 and len(new_events.of(ScheduleConflict)) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        m.startswith("ScheduleConflict tick: live nodes define it differently")
        and m.endswith("the newest node's definition runs: every 1s")
        for m in warnings
    ), warnings
