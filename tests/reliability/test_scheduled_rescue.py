"""A node dies during a scheduled run and the rescue fails that run for good: the rescue must
insert the next run in the same transaction, as the completion path does, or the schedule
stalls until the next re-registration (up to a minute later)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import wait_until
from tests.reliability.raw import execute

import bgjobs
from bgjobs.adapters.base import ClaimRequest, JobFilter, Occurrence, Store, schedule_key
from bgjobs.job import NewJob


def test_a_scheduled_run_failed_by_the_rescue_gets_its_next_run_at_once(
    store: Store, database_url: str
) -> None:
    due = datetime.now(UTC) - timedelta(minutes=1)
    (run,) = store.insert_jobs(
        [
            NewJob(
                queue="scheduled",
                name="tick",
                raw_payload="null",
                max_attempts=1,
                available_at=due,
                unique_key=schedule_key("tick"),
                schedule="tick",
            )
        ]
    )
    # A node without a liveness lock claimed it and died: only its lease can free the run.
    claimed = store.claim(ClaimRequest("scheduled", "ghost:1:dead", 1, timedelta(milliseconds=1)))
    assert [job.id for job in claimed] == [run.id]
    # It had already crashed nodes twice, so it ran alone: this rescue is charged, and it
    # has no attempts left.
    execute(database_url, "UPDATE bgjobs_jobs SET rescues = 2 WHERE id = ?", run.id)
    bg = (
        bgjobs.new(store)
        .with_heartbeat(0.2, 5)
        .with_scheduled_job(
            bgjobs.scheduled_job(bgjobs.worker("tick", lambda job: None), bgjobs.every(hours=1))
        )
        .build()
    )
    with bg:
        wait_until(lambda: (store.get_job(run.id) or run).state is bgjobs.JobState.FAILED, 10)
        pending = store.list_jobs(JobFilter(name="tick", state=bgjobs.JobState.SCHEDULED))
    assert [job.unique_key for job in pending] == [schedule_key("tick")], "the next run is there"
    assert pending[0].available_at > datetime.now(UTC), "on the schedule's grid, ahead"
    (state,) = store.schedule_states()
    assert state.last_outcome == "failed" and state.last_due_at == due
    ran = [e for e in store.schedule_history("tick", limit=10) if e.job_id == run.id]
    assert [(e.outcome, e.result, e.node) for e in ran] == [
        (Occurrence.RAN, "failed", "ghost:1:dead")
    ], "the rescue writes the run's history as its completion would"
