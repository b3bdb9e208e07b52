"""Scheduled jobs in the runtime: next run as a row, no drift, missed-run policies, redeploys."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs.adapters.base import JobFilter, Store
from bgjobs.builder import MissedRuns, ScheduledJobSpec
from bgjobs.events import ScheduledNextRun
from bgjobs.runtime import scheduling

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def spec_every(seconds: float, missed: str = "coalesce") -> ScheduledJobSpec:
    return bgjobs.scheduled_job(
        bgjobs.worker("tick", lambda j: None), bgjobs.every(seconds=seconds)
    ).with_missed_runs(missed)


# registration maths (the run that follows a finished one: test_schedule_maths.py) -------------
def test_registration_policies() -> None:
    now = T0 + timedelta(seconds=5)
    coalesce = scheduling.registration(spec_every(10), "scheduled", now)
    skip = scheduling.registration(spec_every(10, "skip"), "scheduled", now)
    assert coalesce.first_run.available_at == T0 + timedelta(seconds=10)
    assert coalesce.overdue_run is not None
    assert coalesce.overdue_run.available_at == T0, "the latest missed occurrence, on the grid"
    assert skip.overdue_run is not None
    assert skip.overdue_run.available_at == T0 + timedelta(seconds=10)
    assert coalesce.definition == skip.definition == "every 10s"


# in the runtime, on both backends ------------------------------------------------------------
def build(store: Store, spec: ScheduledJobSpec, recorder: Recorder | None = None) -> bgjobs.BgJobs:
    b = bgjobs.new(store).with_scheduled_job(spec)
    if recorder is not None:
        b = b.with_event_listener(recorder)
    return b.build()


def recording(runs: list[datetime], lock: threading.Lock) -> Callable[[bgjobs.Job], None]:
    def tick(job: bgjobs.Job) -> None:
        with lock:
            runs.append(job.scheduled_at)

    return tick


def test_every_second_runs_on_the_grid_and_reports_schedules(store: Store) -> None:
    runs: list[datetime] = []
    lock = threading.Lock()
    recorder = Recorder()
    spec = bgjobs.scheduled_job(
        bgjobs.worker("tick", recording(runs, lock)), bgjobs.every(seconds=1)
    )
    bg = build(store, spec, recorder)
    with bg:
        wait_until(lambda: len(runs) >= 3, 10, "three runs")
        infos = bg.schedules()
    assert [r.microsecond for r in runs] == [0] * len(runs), "due times are on the 1 s grid"
    assert all((b - a) == timedelta(seconds=1) for a, b in pairwise(runs))
    assert recorder.of(ScheduledNextRun)
    [info] = infos
    assert info.name == "tick" and info.queue == "scheduled" and info.schedule == "every 1s"
    assert info.last_outcome == "succeeded" and info.next_run_at is not None
    assert len(store.list_jobs(JobFilter(name="tick", state=bgjobs.JobState.SCHEDULED))) == 1


def test_failing_scheduled_job_still_schedules_the_next_run(store: Store) -> None:
    calls: list[int] = []

    def boom(job: bgjobs.Job) -> None:
        calls.append(job.id)
        raise RuntimeError("scheduled failure")

    spec = bgjobs.scheduled_job(bgjobs.worker("boom", boom), bgjobs.every(seconds=1))
    with build(store, spec):
        wait_until(lambda: len(calls) >= 2, 10, "two failing runs")
    failed = store.list_jobs(JobFilter(name="boom", state=bgjobs.JobState.FAILED))
    assert len(failed) >= 2 and failed[0].errors[-1].message == "scheduled failure"


def test_restart_coalesces_missed_runs_into_one(store_factory: Callable[..., Store]) -> None:
    runs: list[datetime] = []
    lock = threading.Lock()
    spec = bgjobs.scheduled_job(
        bgjobs.worker("tick", recording(runs, lock)), bgjobs.every(seconds=1)
    )
    first = store_factory()
    with build(first, spec):
        wait_until(lambda: len(runs) >= 1, 10)
    stopped_at = datetime.now(UTC)
    wait_until(
        lambda: datetime.now(UTC) - stopped_at > timedelta(seconds=3.2),
        10,
        "several due times to pass while down",
    )
    before = len(runs)
    restarted_at = datetime.now(UTC)
    with build(store_factory(), spec):
        wait_until(lambda: len(runs) >= before + 2, 10)
    after = runs[before:]
    assert all(r > restarted_at - timedelta(seconds=1) for r in after), (
        "missed occurrences are not replayed one by one"
    )
    assert len([r for r in after if r <= restarted_at]) <= 1, "one coalesced run at most"
    assert all(r.microsecond == 0 for r in after), "every run stays on the 1 s grid"
    assert len(after) == len(set(after)), "no occurrence runs twice"


def test_restart_with_skip_drops_missed_runs(store_factory: Callable[..., Store]) -> None:
    runs: list[datetime] = []
    lock = threading.Lock()
    spec = bgjobs.scheduled_job(
        bgjobs.worker("tick", recording(runs, lock)), bgjobs.every(seconds=1)
    ).with_missed_runs(MissedRuns.SKIP)
    with build(store_factory(), spec):
        wait_until(lambda: len(runs) >= 1, 10)
    stopped_at = datetime.now(UTC)
    wait_until(lambda: datetime.now(UTC) - stopped_at > timedelta(seconds=2.2), 10)
    before = len(runs)
    restarted_at = datetime.now(UTC)
    with build(store_factory(), spec):
        wait_until(lambda: len(runs) >= before + 1, 10)
    assert all(r > restarted_at and r.microsecond == 0 for r in runs[before:])


def test_changed_definition_reschedules_the_pending_run(
    store_factory: Callable[..., Store],
) -> None:
    ran = threading.Event()
    hourly = bgjobs.scheduled_job(bgjobs.worker("job", lambda j: ran.set()), bgjobs.every(hours=1))
    with build(store_factory(), hourly):
        pass
    store = store_factory()
    store.open()
    [pending] = store.list_jobs(JobFilter(name="job"))
    assert pending.available_at > datetime.now(UTC)
    secondly = bgjobs.scheduled_job(
        bgjobs.worker("job", lambda j: ran.set()), bgjobs.every(seconds=1)
    )
    with build(store_factory(), secondly):
        assert ran.wait(5), "the new definition took effect on redeploy"
