"""Operating schedules in the runtime, on both backends: the history of every due time, runs
longer than their interval (overlap skip/queue), pause and resume, run-now, and a schedule
removed from the code (two versions of an app sharing a database)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs.adapters.base import JobFilter, Occurrence, ScheduleRecord, Store
from bgjobs.builder import ScheduledJobSpec
from bgjobs.errors import UnknownScheduleError
from bgjobs.events import (
    JobSnoozed,
    ScheduledRunSkipped,
    SchedulePaused,
    ScheduleRemoved,
    ScheduleResumed,
)
from bgjobs.runtime import maintenance, scheduled_jobs

SECOND = timedelta(seconds=1)


def build(
    store: Store, *specs: ScheduledJobSpec, recorder: Recorder | None = None
) -> bgjobs.BgJobs:
    spec = bgjobs.new(store).with_heartbeat(0.2, 1.5)
    for scheduled in specs:
        spec = spec.with_scheduled_job(scheduled)
    if recorder is not None:
        spec = spec.with_event_listener(recorder)
    return spec.build()


def every_second(name: str, handler: Callable[[bgjobs.Job], None]) -> ScheduledJobSpec:
    return bgjobs.scheduled_job(bgjobs.worker(name, handler), bgjobs.every(seconds=1))


def ran(records: Iterable[ScheduleRecord]) -> list[ScheduleRecord]:
    return sorted((r for r in records if r.outcome is Occurrence.RAN), key=lambda r: r.due_at)


def due_times(record: ScheduleRecord) -> list[datetime]:
    """Every due time a record settles (every-second schedules)."""
    assert record.occurrences is not None
    return [record.due_at + SECOND * k for k in range(record.occurrences)]


def assert_each_due_time_once(records: Iterable[ScheduleRecord]) -> None:
    """Regular due times, from the first to the last recorded: each has exactly one record."""
    settled = sorted(t for r in records if not r.manual for t in due_times(r))
    assert settled, "nothing recorded"
    expected = [settled[0] + SECOND * k for k in range(len(settled))]
    assert settled == expected, f"gaps or repeats: {settled}"


def test_every_run_is_recorded_with_its_node_lateness_and_outcome(store: Store) -> None:
    calls: list[int] = []
    bg = build(store, every_second("tick", lambda job: calls.append(job.id)))
    with bg:
        wait_until(lambda: len(ran(bg.schedule_history("tick"))) >= 3, 30, "three recorded runs")
        [info] = bg.schedules()
    history = bg.schedule_history("tick")
    runs = ran(history)
    assert {r.node for r in runs} == {bg.node_id}
    assert all(r.result == "succeeded" and not r.manual for r in runs)
    assert all(r.lateness is not None and timedelta(0) <= r.lateness < 5 * SECOND for r in runs)
    assert all(r.job_id in calls for r in runs)
    assert_each_due_time_once(history)
    assert info.last_record is not None and info.lateness is not None and not info.paused
    assert bg.schedule_history("tick", limit=1) == history[:1], "newest first"


@pytest.mark.parametrize("overlap", ["skip", "queue"])
def test_a_run_longer_than_its_interval(store: Store, overlap: str) -> None:
    """The first run is held until 2.5 s past its start, so two or three due times pass while it
    runs; what happens to them is the overlap choice, and each is recorded."""
    release = threading.Event()
    started: list[datetime] = []

    def slow(job: bgjobs.Job) -> None:
        started.append(datetime.now(UTC))
        if len(started) == 1:
            release.wait(30)

    bg = build(store, every_second("slow", slow).with_overlap(overlap))
    with bg:
        wait_until(lambda: started, 30, "the first run")
        wait_until(lambda: datetime.now(UTC) > started[0] + 2.5 * SECOND, 30, "due times to pass")
        release.set()
        wait_until(lambda: len(ran(bg.schedule_history("slow"))) >= 2, 30, "a second run")
        history = bg.schedule_history("slow", 100)
    first, second = ran(history)[:2]
    assert first.recorded_at is not None and second.started_at is not None
    assert second.started_at >= first.recorded_at, "never two runs at once"
    passed = [r for r in history if first.due_at < r.due_at < second.due_at]
    if overlap == "skip":
        assert [r.outcome for r in passed] == [Occurrence.SKIPPED_OVERLAP]
        [skipped] = passed
        assert skipped.job_id == first.job_id and (skipped.occurrences or 0) >= 2
        assert second.due_at > first.recorded_at, "the next run waits for the grid"
    else:
        assert [r.outcome for r in passed] == [Occurrence.COALESCED]
        assert passed[0].job_id == second.job_id, "folded into the queued run"
        assert second.due_at < first.recorded_at, "queued: due while the first still ran"
        assert second.started_at - first.recorded_at < 5 * SECOND, "starts once the first ends"
    assert_each_due_time_once(history)


def test_pause_records_skips_and_resume_continues_on_the_grid(store: Store) -> None:
    recorder = Recorder()
    calls: list[datetime] = []
    bg = build(
        store, every_second("tick", lambda job: calls.append(job.scheduled_at)), recorder=recorder
    )
    with bg:
        wait_until(lambda: calls, 30, "a first run")
        info = bg.pause_schedule("tick")
        assert info.paused and info.paused_until is None
        paused_at = bg.now()
        wait_until(
            lambda: len(recorder.of(ScheduledRunSkipped)) >= 2, 30, "two occurrences skipped"
        )
        [listed] = bg.schedules()
        assert listed.paused
        bg.resume_schedule("tick")
        resumed_at = bg.now()
        wait_until(lambda: calls and calls[-1] > resumed_at, 30, "a run after resuming")
        history = bg.schedule_history("tick", 100)
    assert not [c for c in calls if paused_at + SECOND < c <= resumed_at], "nothing ran paused"
    skipped = [r for r in history if r.outcome is Occurrence.SKIPPED_PAUSED]
    assert len(skipped) >= 2 and all(paused_at - SECOND < r.due_at <= resumed_at for r in skipped)
    assert all(c.microsecond == 0 for c in calls), "back on the grid"
    assert {e.reason for e in recorder.of(ScheduledRunSkipped)} == {"skipped_paused"}
    assert [
        type(e) for e in recorder.events if isinstance(e, SchedulePaused | ScheduleResumed)
    ] == [
        SchedulePaused,
        ScheduleResumed,
    ]
    assert_each_due_time_once(history)


def test_a_pause_until_a_time_ends_by_itself(store: Store) -> None:
    calls: list[datetime] = []
    bg = build(store, every_second("tick", lambda job: calls.append(job.scheduled_at)))
    with bg:
        wait_until(lambda: calls, 30, "a first run")
        info = bg.pause_schedule("tick", until=timedelta(seconds=2.5))
        assert info.paused_until is not None
        wait_until(lambda: calls and calls[-1] >= info.paused_until, 30, "runs after the pause")
        history = bg.schedule_history("tick", 100)
    assert any(r.outcome is Occurrence.SKIPPED_PAUSED for r in history)
    assert_each_due_time_once(history)


def test_run_now_runs_beside_the_grid_and_waits_one_at_a_time(store: Store) -> None:
    release = threading.Event()
    calls: list[bgjobs.Job] = []

    def hourly(job: bgjobs.Job) -> None:
        calls.append(job)
        release.wait(30)

    spec = bgjobs.scheduled_job(bgjobs.worker("hourly", hourly), bgjobs.every(hours=1))
    bg = build(store, spec)
    with bg:
        [regular] = store.list_jobs(JobFilter(name="hourly"))
        bg.pause_schedule("hourly")  # a run-now run was asked for: it runs even while paused
        extra = bg.run_schedule_now("hourly")
        assert extra is not None and extra.unique_key != regular.unique_key
        wait_until(lambda: calls, 30, "the run-now run")
        assert bg.run_schedule_now("hourly") is None, "one run-now run at a time"
        release.set()
        wait_until(lambda: ran(bg.schedule_history("hourly")), 30, "its record")
        [record] = bg.schedule_history("hourly")
        with pytest.raises(UnknownScheduleError, match=r"no schedule named 'nope'.*known: hourly"):
            bg.run_schedule_now("nope")
    assert (record.outcome, record.manual, record.job_id) == (Occurrence.RAN, True, extra.id)
    [still] = store.list_jobs(JobFilter(name="hourly", state=bgjobs.JobState.SCHEDULED))
    assert (still.id, still.available_at) == (regular.id, regular.available_at), "grid untouched"


@pytest.mark.parametrize("overlap", ["skip", "queue"])
def test_a_run_now_run_and_a_regular_run_never_overlap(store: Store, overlap: str) -> None:
    """A run-now run is held in its handler while regular occurrences come due: they are
    skipped, or wait and start as soon as it ends, by the overlap choice; never both at once."""
    release = threading.Event()
    manual_started = threading.Event()
    spans: list[tuple[datetime, datetime, bool]] = []
    recorder = Recorder()

    def tick(job: bgjobs.Job) -> None:
        start = datetime.now(UTC)
        manual = job.unique_key != "schedule:tick"
        if manual:
            manual_started.set()
            release.wait(30)
        spans.append((start, datetime.now(UTC), manual))

    def regular_held() -> bool:
        if overlap == "skip":
            history = bg.schedule_history("tick")
            return any(r.outcome is Occurrence.SKIPPED_OVERLAP and not r.manual for r in history)
        return any(e.job.unique_key == "schedule:tick" for e in recorder.of(JobSnoozed))

    bg = build(store, every_second("tick", tick).with_overlap(overlap), recorder=recorder)
    with bg:
        wait_until(lambda: spans, 30, "a first regular run")
        for _ in range(5):  # a run-now run claimed while a regular run goes is itself held
            bg.run_schedule_now("tick")
            if manual_started.wait(5):
                break
        wait_until(regular_held, 30, "a regular occurrence held while the run-now run goes")
        release.set()
        wait_until(lambda: any(m for *_, m in spans), 30, "the run-now run ended")
        manual_end = next(end for _, end, m in spans if m)
        wait_until(lambda: spans[-1][0] > manual_end, 30, "regular runs again")
    ordered = sorted(spans)
    for (_, end, _), (start, _, _) in pairwise(ordered):
        assert start >= end, f"two runs of one schedule at once: {ordered}"
    after = next(start for start, _, m in ordered if start >= manual_end)
    if overlap == "queue":
        assert after - manual_end < 3 * SECOND, "the waiting run starts once the other ends"


def test_a_schedule_removed_from_the_code_is_retired_never_discarded(
    store_factory: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 1 defines "keep" and "gone"; version 2 only "keep". While a version-1 node
    lives, "gone" keeps running there; once none does, its waiting run is removed."""
    monkeypatch.setattr(maintenance, "REGISTER_EVERY", 0.3)
    monkeypatch.setattr(scheduled_jobs, "NOT_DEFINED_HERE_WAIT", timedelta(milliseconds=300))
    gone_runs: list[str] = []
    recorder = Recorder()

    def version(*names: str, events: Recorder | None = None) -> bgjobs.BgJobs:
        specs = [
            every_second(
                n,
                (lambda job: gone_runs.append(job.reserved_by or ""))
                if n == "gone"
                else (lambda job: None),
            )
            for n in names
        ]
        return build(store_factory(), *specs, recorder=events)

    old = version("keep", "gone").start()
    new = version("keep", events=recorder).start()
    try:
        wait_until(lambda: len(gone_runs) >= 2, 30, "gone runs while an old node lives")
        assert not recorder.of(ScheduleRemoved), "an old node still defines it"
        old.stop()
        wait_until(lambda: recorder.of(ScheduleRemoved), 30, "the new node retires it")
        [event] = recorder.of(ScheduleRemoved)
        assert event.schedule == "gone"
        checker = store_factory()
        checker.open()
        assert checker.list_jobs(JobFilter(name="gone", state=bgjobs.JobState.SCHEDULED)) == []
        assert checker.list_jobs(JobFilter(name="gone", state=bgjobs.JobState.AVAILABLE)) == []
        state = checker.schedule_state("gone")
        assert state is not None and state.removed_at is not None
        again = version("keep", "gone").start()  # a deploy that defines it again brings it back
        try:
            wait_until(lambda: len(gone_runs) >= 3, 30, "gone runs again")
        finally:
            again.stop()
    finally:
        new.stop()
        old.stop()
    assert set(gone_runs) <= {old.node_id, again.node_id}, "only nodes that define it ran it"
    for state in (bgjobs.JobState.DISCARDED, bgjobs.JobState.FAILED):
        assert checker.list_jobs(JobFilter(name="gone", state=state)) == [], "never poison"
