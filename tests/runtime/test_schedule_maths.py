"""The schedule maths with chosen times: the run after a finished one, the history of the due
times it settles (late, overlapped, skipped), and spans of many due times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import bgjobs
from bgjobs.adapters.base import Occurrence, ScheduleRecord, run_now_key, schedule_key
from bgjobs.builder import Overlap, ScheduledJobSpec
from bgjobs.errors import ConfigError
from bgjobs.job import Job, JobState
from bgjobs.runtime import scheduling

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def spec_every(
    seconds: float, missed: str = "coalesce", overlap: str | None = None
) -> ScheduledJobSpec:
    spec = bgjobs.scheduled_job(
        bgjobs.worker("tick", lambda j: None), bgjobs.every(seconds=seconds)
    ).with_missed_runs(missed)
    return spec if overlap is None else spec.with_overlap(overlap)


def run(due: datetime, started: datetime, key: str | None = schedule_key("tick")) -> Job:
    return Job(
        id=41,
        queue="scheduled",
        name="tick",
        raw_payload="null",
        state=JobState.RUNNING,
        priority=0,
        attempt=1,
        max_attempts=1,
        available_at=due,
        created_at=due,
        scheduled_at=due,
        reserved_by="node",
        reserved_at=started,
        unique_key=key,
        schedule="tick",
    )


def after(
    spec: ScheduledJobSpec, job: Job, ended: datetime
) -> tuple[datetime, list[ScheduleRecord]]:
    follow = scheduling.after_run(spec, "scheduled", job, ended)
    assert follow.next_run is not None and follow.next_run.available_at is not None
    return follow.next_run.available_at, list(follow.history)


def test_the_next_run_is_computed_from_the_due_time_not_the_end() -> None:
    assert after(spec_every(10), run(T0, s(0.002)), s(3)) == (s(10), [])


def test_due_times_passed_while_a_run_waited_to_start_are_coalesced_into_it() -> None:
    next_due, records = after(spec_every(10), run(T0, s(25)), s(26))
    assert next_due == s(30), "the late run stands for them: no extra run"
    [record] = records
    assert (record.outcome, record.due_at, record.last_due_at) == (
        Occurrence.COALESCED,
        s(10),
        s(20),
    )
    assert (record.occurrences, record.job_id) == (2, 41)


def test_with_missed_skip_due_times_passed_while_waiting_are_skipped() -> None:
    _, [record] = after(spec_every(10, "skip"), run(T0, s(25)), s(26))
    assert (record.outcome, record.occurrences) == (Occurrence.SKIPPED_MISSED, 2)


def test_overlap_queue_runs_the_latest_passed_due_time_at_once_standing_for_the_others() -> None:
    next_due, [record] = after(spec_every(10, overlap="queue"), run(T0, s(0.01)), s(35))
    assert next_due == s(30), "due in the past: it starts as soon as the run ended"
    assert (record.outcome, record.due_at, record.last_due_at) == (
        Occurrence.COALESCED,
        s(10),
        s(20),
    )
    assert record.occurrences == 2 and record.into_next, "folded into the queued run"


def test_overlap_queue_with_one_passed_due_time_just_runs_it() -> None:
    assert after(spec_every(10, overlap="queue"), run(T0, s(1)), s(12)) == (s(10), [])


def test_overlap_skip_records_every_due_time_passed_during_the_run() -> None:
    next_due, [record] = after(spec_every(10, overlap="skip"), run(T0, s(0.01)), s(35))
    assert next_due == s(40)
    assert (record.outcome, record.due_at, record.last_due_at) == (
        Occurrence.SKIPPED_OVERLAP,
        s(10),
        s(30),
    )
    assert (record.occurrences, record.job_id) == (3, 41), "names the run that was still going"


def test_late_and_overlapped_due_times_are_told_apart() -> None:
    _, records = after(spec_every(10, overlap="skip"), run(T0, s(15)), s(27))
    assert [(r.outcome, r.due_at, r.occurrences) for r in records] == [
        (Occurrence.COALESCED, s(10), 1),
        (Occurrence.SKIPPED_OVERLAP, s(20), 1),
    ]


def test_overlap_defaults_to_the_missed_run_policy() -> None:
    assert spec_every(1).overlap_policy is Overlap.QUEUE
    assert spec_every(1, "skip").overlap_policy is Overlap.SKIP
    assert spec_every(1, "skip", "queue").overlap_policy is Overlap.QUEUE
    with pytest.raises(
        ConfigError, match="with_overlap\\('never'\\): choose one of 'skip', 'queue'"
    ):
        spec_every(1).with_overlap("never")


def test_a_run_now_run_leaves_the_grid_alone() -> None:
    follow = scheduling.after_run(
        spec_every(10), "scheduled", run(s(3), s(3), run_now_key("tick")), s(50)
    )
    assert follow == scheduling.FollowUp()


def test_a_skipped_run_skips_the_due_times_since_and_waits_for_the_next() -> None:
    follow = scheduling.after_skip(
        spec_every(10), "scheduled", run(T0, s(21)), s(21), Occurrence.SKIPPED_PAUSED
    )
    assert follow.next_run is not None and follow.next_run.available_at == s(30)
    [record] = follow.history
    assert (record.outcome, record.due_at, record.last_due_at, record.occurrences) == (
        Occurrence.SKIPPED_PAUSED,
        s(10),
        s(20),
        2,
    )


def test_registration_records_what_the_missed_run_policy_did() -> None:
    now = s(45)
    coalesce = scheduling.registration(spec_every(10), "scheduled", now)
    assert coalesce.missed_records is not None
    [folded] = coalesce.missed_records(s(10))
    assert (folded.outcome, folded.due_at, folded.last_due_at, folded.occurrences) == (
        Occurrence.COALESCED,
        s(10),
        s(30),
        3,
    )
    assert folded.into_next, "into the catch-up run due at 40 s"
    skip = scheduling.registration(spec_every(10, "skip"), "scheduled", now)
    assert skip.missed_records is not None
    [dropped] = skip.missed_records(s(10))
    assert (dropped.outcome, dropped.due_at, dropped.last_due_at, dropped.occurrences) == (
        Occurrence.SKIPPED_MISSED,
        s(10),
        s(40),
        4,
    )


def test_spans_count_intervals_exactly_and_leave_huge_cron_spans_uncounted() -> None:
    week = scheduling.span(bgjobs.every(seconds=1), T0, T0 + timedelta(days=7))
    assert week == scheduling.Span(s(1), T0 + timedelta(days=7), 7 * 86_400)
    assert scheduling.span(bgjobs.every(seconds=10), T0, s(9)) is None
    every_second = bgjobs.cron("* * * * * *")
    small = scheduling.span(every_second, T0, s(5))
    assert small == scheduling.Span(s(1), s(5), 5)
    huge = scheduling.span(every_second, T0, T0 + timedelta(days=1))
    assert huge == scheduling.Span(s(1), T0 + timedelta(days=1), None)


def test_registration_records_due_times_missed_while_the_schedule_was_removed() -> None:
    registration = scheduling.registration(spec_every(10), "scheduled", s(45))
    assert registration.removed_records is not None
    [record] = registration.removed_records(s(10))
    assert (record.outcome, record.due_at, record.last_due_at, record.occurrences) == (
        Occurrence.REMOVED,
        s(20),
        s(40),
        3,
    )
    assert registration.removed_records(s(40)) == ()
