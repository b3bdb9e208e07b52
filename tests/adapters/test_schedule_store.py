"""The schedule half of the Store contract, on both backends: the history written in the same
transaction as the event it records, the run gate (pause, one run at a time), pause and resume,
the wake-up of runs waiting for the run slot, which node defines which schedule and retiring the
undefined, history retention, and the migration from schema 1."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import PG_URL, make_store

from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    ClaimRequest,
    Completion,
    JobFilter,
    NodeInfo,
    Occurrence,
    Outcome,
    RunGate,
    ScheduleRecord,
    ScheduleRegistration,
    Store,
    run_now_key,
    schedule_key,
)
from bgjobs.errors import SchemaError
from bgjobs.job import CancelOutcome, Job, JobState, NewJob

LEASE = timedelta(seconds=30)


def run_of(
    store: Store, name: str = "tick", delay: timedelta = timedelta(0), **kw: object
) -> NewJob:
    fields: dict[str, object] = {
        "queue": "scheduled",
        "name": name,
        "raw_payload": "null",
        "max_attempts": 1,
        "available_at": store.now() + delay,
        "unique_key": schedule_key(name),
        "schedule": name,
    }
    fields.update(kw)
    return NewJob(**fields)  # type: ignore[arg-type]


def register(store: Store, name: str = "tick", delay: timedelta = timedelta(0)) -> Job:
    registration = ScheduleRegistration(
        name, "every 1m", run_of(store, name, delay), max_attempts=2
    )
    pending = store.register_schedule(registration, "scheduled")
    assert pending is not None
    return pending


def claim(store: Store, node: str = "n1") -> list[Job]:
    return store.claim(ClaimRequest(queue="scheduled", node_id=node, limit=10, lease=LEASE))


def node(node_id: str, store: Store) -> NodeInfo:
    now = store.now()
    return NodeInfo(node_id, "host", 1, now, now, ("scheduled",))


def test_a_finished_run_and_the_due_times_it_settles_are_recorded_with_it(store: Store) -> None:
    register(store)
    [job] = claim(store)
    extra = ScheduleRecord("tick", Occurrence.COALESCED, job.scheduled_at, into_next=True)
    skipped = ScheduleRecord("tick", Occurrence.SKIPPED_OVERLAP, job.scheduled_at, job_id=job.id)
    following = run_of(store, delay=timedelta(minutes=1))
    [applied] = store.complete(
        [Completion(job, "n1", Outcome.SUCCEEDED, next_run=following, history=(extra, skipped))]
    )
    assert applied.applied and applied.next_run is not None
    newest_first = store.schedule_history("tick", 10)
    assert [r.outcome for r in newest_first] == [
        Occurrence.SKIPPED_OVERLAP,
        Occurrence.COALESCED,
        Occurrence.RAN,
    ]
    ran = newest_first[-1]
    assert (ran.job_id, ran.node, ran.result, ran.manual) == (job.id, "n1", "succeeded", False)
    assert ran.started_at == job.reserved_at and ran.due_at == job.scheduled_at
    assert ran.lateness is not None and ran.lateness >= timedelta(0)
    assert ran.recorded_at is not None and ran.recorded_at >= ran.started_at
    assert newest_first[1].job_id == applied.next_run.id, "into the run inserted with it"
    [state] = store.schedule_states()
    assert state.last_record == newest_first[0]
    assert (state.last_outcome, state.last_started_at) == ("succeeded", job.reserved_at)


def test_a_completion_whose_fence_failed_records_nothing(store: Store) -> None:
    register(store)
    [job] = claim(store)
    [applied] = store.complete([Completion(job, "someone-else", Outcome.SUCCEEDED)])
    assert not applied.applied
    assert store.schedule_history("tick", 10) == []


def test_a_skipped_run_leaves_a_record_and_no_archive_row(store: Store) -> None:
    register(store)
    [job] = claim(store)
    store.complete(
        [Completion(job, "n1", Outcome.SUCCEEDED, keep=False, skipped=Occurrence.SKIPPED_PAUSED)]
    )
    [record] = store.schedule_history("tick", 10)
    assert (record.outcome, record.due_at, record.result) == (
        Occurrence.SKIPPED_PAUSED,
        job.scheduled_at,
        None,
    )
    assert store.get_job(job.id) is None
    [state] = store.schedule_states()
    assert state.last_outcome is None, "the last run's outcome is about runs only"


def test_the_gate_lets_one_run_of_a_schedule_go_at_a_time(store: Store) -> None:
    register(store)
    [regular] = claim(store, "a")
    store.insert_jobs([run_of(store, unique_key=run_now_key("tick"))])
    [extra] = claim(store, "b")
    assert store.begin_scheduled_run(regular) is RunGate.RUN
    assert store.begin_scheduled_run(regular) is RunGate.RUN, "its own slot (a re-claim)"
    assert store.begin_scheduled_run(extra) is RunGate.BUSY
    store.complete([Completion(regular, "a", Outcome.SUCCEEDED)])
    assert store.begin_scheduled_run(extra) is RunGate.RUN, "the end of a run frees the slot"


def test_a_slot_held_by_a_run_that_is_no_longer_reserved_is_free(store: Store) -> None:
    register(store)
    [regular] = claim(store, "a")
    assert store.begin_scheduled_run(regular) is RunGate.RUN
    store.release("a", [regular.id])  # e.g. a node stopping gives it back
    store.insert_jobs([run_of(store, unique_key=run_now_key("tick"), priority=-1)])
    [extra] = store.claim(ClaimRequest(queue="scheduled", node_id="b", limit=1, lease=LEASE))
    assert extra.id != regular.id
    assert store.begin_scheduled_run(extra) is RunGate.RUN


def test_pause_holds_regular_runs_only_until_resumed_or_until_its_end(store: Store) -> None:
    register(store)
    [regular] = claim(store)
    paused = store.pause_schedule("tick", None)
    assert paused is not None and paused.paused(store.now()) and paused.paused_until is None
    assert store.begin_scheduled_run(regular) is RunGate.PAUSED
    store.insert_jobs([run_of(store, unique_key=run_now_key("tick"))])
    [extra] = claim(store, "b")
    assert store.begin_scheduled_run(extra) is RunGate.RUN, "run-now was asked for explicitly"

    until = store.now() + timedelta(hours=1)
    again = store.pause_schedule("tick", until)
    assert again is not None and again.paused_at == paused.paused_at, "a pause keeps its start"
    assert again.paused_until == until
    resumed = store.resume_schedule("tick")
    assert resumed is not None and not resumed.paused(store.now()) and resumed.paused_at is None
    store.pause_schedule("tick", store.now() + timedelta(milliseconds=1))
    state = store.schedule_state("tick")
    assert state is not None and not state.paused(store.now() + timedelta(seconds=1))
    assert store.pause_schedule("nope", None) is None and store.resume_schedule("nope") is None


def test_the_end_of_a_run_wakes_the_runs_waiting_for_the_slot(store: Store) -> None:
    register(store)
    [regular] = claim(store, "a")
    store.begin_scheduled_run(regular)
    store.insert_jobs([run_of(store, unique_key=run_now_key("tick"))])
    [extra] = claim(store, "b")
    assert store.begin_scheduled_run(extra) is RunGate.BUSY
    store.complete([Completion(extra, "b", Outcome.SNOOZED, delay=timedelta(hours=1))])
    assert claim(store, "b") == [], "waiting, due in an hour"
    store.complete([Completion(regular, "a", Outcome.SUCCEEDED)])
    [woken] = claim(store, "b")
    assert woken.id == extra.id and woken.attempt == 1, "the wait spent no attempt"


def test_every_run_of_a_schedule_holds_its_key_through_the_keys_table(store: Store) -> None:
    pending = register(store)
    again = store.insert_jobs([run_of(store)])[0]
    assert again.duplicate and again.id == pending.id, "one regular run per schedule"
    now_key = run_now_key("tick")
    first, second = store.insert_jobs([run_of(store, unique_key=now_key)] * 2)
    assert not first.duplicate and second.duplicate and second.id == first.id
    assert store.insert_jobs([run_of(store, unique_key=now_key)])[0].id == first.id
    [regular, extra] = sorted(claim(store), key=lambda job: job.id)
    next_run = run_of(store, delay=timedelta(minutes=1))
    [applied] = store.complete([Completion(regular, "n1", Outcome.SUCCEEDED, next_run=next_run)])
    assert applied.next_run is not None, "the finished run's key was taken over"
    assert store.insert_jobs([run_of(store)])[0].id == applied.next_run.id
    state = store.schedule_state("tick")
    assert state is not None and state.next_run_at == applied.next_run.available_at
    store.complete([Completion(extra, "n1", Outcome.SUCCEEDED)])
    after = store.insert_jobs([run_of(store, unique_key=now_key)])[0]
    assert not after.duplicate, "a finished run-now run frees its key"
    hot = store.list_jobs(JobFilter(name="tick"))
    keyed = [job.unique_key for job in hot if not job.state.is_finished]
    assert sorted(keyed) == sorted([schedule_key("tick"), now_key])


def test_a_run_cancelled_while_running_is_recorded_and_frees_its_slot(store: Store) -> None:
    register(store)
    [run] = claim(store)
    assert store.begin_scheduled_run(run) is RunGate.RUN
    assert store.cancel_job(run.id).outcome is CancelOutcome.REQUESTED
    assert store.cancel_requested("n1") == [run.id]
    next_run = run_of(store, delay=timedelta(minutes=1))
    [applied] = store.complete([Completion(run, "n1", Outcome.CANCELLED, next_run=next_run)])
    assert applied.applied and applied.next_run is not None
    [record] = store.schedule_history("tick", 10)
    assert (record.outcome, record.result, record.job_id) == (Occurrence.RAN, "cancelled", run.id)
    store.insert_jobs([run_of(store, unique_key=run_now_key("tick"))])
    [extra] = claim(store)
    assert store.begin_scheduled_run(extra) is RunGate.RUN, "the cancelled run freed the slot"


def test_sqlite_schedule_queries_find_runs_by_key_not_by_a_scan(tmp_path: Path) -> None:
    from bgjobs.adapters.sqlite import queries as q

    store = make_store("sqlite", tmp_path, None)
    store.open()
    store.close()
    conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
    params = {"now": 0, "regular": "schedule:t", "run_now": "schedule-now:t", "prefix": "s:"}
    for sql in (q.SCHEDULE_WAKE, q.SCHEDULE_REMOVE_RUNS, q.SCHEDULE_STATE, q.BY_UNIQUE_KEY):
        args: object = ("schedule:t",) if sql is q.BY_UNIQUE_KEY else {**params, "name": "t"}
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        assert "SCAN bgjobs_jobs" not in plan and "SCAN j" not in plan, plan
    conn.close()


def test_registration_records_the_missed_due_times_it_replaces(store: Store) -> None:
    first = register(store, delay=timedelta(seconds=-30))
    now = store.now()
    catch_up = run_of(store, delay=timedelta(seconds=-1))
    missed = ScheduleRecord("tick", Occurrence.COALESCED, first.scheduled_at, into_next=True)
    registration = ScheduleRegistration(
        "tick",
        "every 1m",
        run_of(store, delay=timedelta(minutes=1)),
        overdue_before=now,
        overdue_run=catch_up,
        missed_records=lambda due: (missed,) if due == first.scheduled_at else (),
    )
    pending = store.register_schedule(registration, "scheduled")
    assert pending is not None and pending.id != first.id
    [record] = store.schedule_history("tick", 10)
    assert (record.outcome, record.job_id) == (Occurrence.COALESCED, pending.id)


def test_a_paused_schedule_keeps_its_overdue_run_for_the_gate(store: Store) -> None:
    first = register(store, delay=timedelta(seconds=-30))
    store.pause_schedule("tick", None)
    registration = ScheduleRegistration(
        "tick",
        "every 1m",
        run_of(store, delay=timedelta(minutes=1)),
        overdue_before=store.now(),
        overdue_run=run_of(store),
        missed_records=lambda due: (ScheduleRecord("tick", Occurrence.COALESCED, due),),
    )
    kept = store.register_schedule(registration, "scheduled")
    assert kept is not None and kept.id == first.id
    assert store.schedule_history("tick", 10) == []


def test_a_schedule_no_live_node_defines_is_retired_once(store: Store) -> None:
    register(store)
    store.insert_jobs([run_of(store, unique_key=run_now_key("tick"), delay=timedelta(hours=1))])
    store.heartbeat(node("old", store))
    store.publish_schedules("old", ["tick"])
    assert store.retire_schedule("tick", timedelta(seconds=30)) is None, "old defines it"
    store.remove_node("old")
    store.unpublish_schedules("old")
    assert store.retire_schedule("tick", timedelta(seconds=30)) is None, "it just stopped"
    removed = store.retire_schedule("tick", timedelta(0))
    assert removed is not None and len(removed) == 2
    assert store.list_jobs(JobFilter(name="tick")) == []
    [record] = store.schedule_history("tick", 10)
    assert record.outcome is Occurrence.REMOVED, (
        "the due run; the future run-now run was no due time"
    )
    state = store.schedule_state("tick")
    assert state is not None and state.removed_at is not None
    assert store.retire_schedule("tick", timedelta(0)) is None, "only once"
    gap = ScheduleRecord("tick", Occurrence.REMOVED, store.now())
    registration = ScheduleRegistration(
        "tick",
        "every 1m",
        run_of(store, delay=timedelta(minutes=1)),
        removed_records=lambda after: (gap,) if after == record.due_at else (),
    )
    assert store.register_schedule(registration, "scheduled") is not None
    state = store.schedule_state("tick")
    assert state is not None and state.removed_at is None, "defined again"
    assert state.last_record is not None and state.last_record.due_at == gap.due_at, (
        "the due times missed while removed are recorded"
    )


def test_a_publication_counts_while_its_node_beats_or_before_its_first_beat(store: Store) -> None:
    register(store)
    store.publish_schedules("starting", ["tick"])  # no registry row yet
    assert store.retire_schedule("tick", timedelta(seconds=30)) is None
    assert store.retire_schedule("tick", timedelta(0)) is not None, "published too long ago"


def test_a_running_run_keeps_its_schedule(store: Store) -> None:
    register(store)
    claim(store)
    assert store.retire_schedule("tick", timedelta(seconds=30)) is None


def test_history_is_pruned_with_the_archive(store: Store) -> None:
    register(store)
    [job] = claim(store)
    following = run_of(store, delay=timedelta(minutes=-1))
    skipped = ScheduleRecord("tick", Occurrence.SKIPPED_MISSED, job.scheduled_at)
    store.complete([Completion(job, "n1", Outcome.FAILED, next_run=following, history=(skipped,))])
    assert len(store.schedule_history("tick", 10)) == 2
    store.prune(timedelta(0), [JobState.SUCCEEDED])
    [failed] = store.schedule_history("tick", 10)
    assert failed.result == "failed", "failed runs follow the failed retention"
    store.prune(timedelta(hours=1), [JobState.FAILED])
    assert len(store.schedule_history("tick", 10)) == 1, "younger than the retention"
    store.prune(timedelta(0), [JobState.FAILED])
    assert store.schedule_history("tick", 10) == []


# migration ---------------------------------------------------------------------------------------
def at_version_1(backend: str, tmp_path: Path, schema: str | None) -> None:
    """A database as bgjobs with schema 1 left it, with a registered schedule."""
    if backend == "sqlite":
        import sqlite3

        from bgjobs.adapters.sqlite import schema as sqlite_schema

        conn = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        sqlite_schema.migrate(conn.cursor(), 1, 0)
        conn.execute(
            "INSERT INTO bgjobs_schedules (name, definition, queue) VALUES ('t', 'd', 'q')"
        )
        conn.execute("COMMIT")
        conn.close()
        return
    import psycopg

    from bgjobs.adapters.postgres import schema as pg_schema

    assert schema is not None
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        pg_schema.migrate(conn, schema, 1)
        conn.execute(
            pg_schema.compose(
                "INSERT INTO {schedules} (name, definition, queue) VALUES ('t', 'd', 'q')", schema
            )
        )


def test_schema_1_migrates_forward_and_is_refused_unmigrated(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    at_version_1(backend, tmp_path, schema)
    checked = make_store(backend, tmp_path, schema, migrate=False)
    with pytest.raises(
        SchemaError, match=f"version 1, this bgjobs needs {SCHEMA_VERSION}.*bgjobs migrate"
    ):
        checked.open()
    checked.close()
    migrating = make_store(backend, tmp_path, schema)
    try:
        assert migrating.open() == (1, SCHEMA_VERSION)
        state = migrating.schedule_state("t")
        assert state is not None and (state.definition, state.max_attempts) == ("d", 1)
        assert not state.paused(migrating.now()) and state.last_record is None
        assert migrating.schedule_history("t", 5) == []
    finally:
        migrating.close()
