"""Unique keys and cancel requests at the Store level, unchanged against both backends.

Who holds a key is judged on the holder as it is now (adapters.decisions.key_taken), so these
tests move holders through every state and check what a second insert of the key gets.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from tests.adapters.test_contract import claim, err, new
from tests.conftest import PG_URL, make_store, wait_until

from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    Completion,
    JobFilter,
    Outcome,
    ScheduleRegistration,
    Store,
    schedule_key,
)
from bgjobs.errors import SchemaError
from bgjobs.job import CancelOutcome, JobState, NewJob, UniqueHold

HOUR = timedelta(hours=1)


def keyed(key: str = "k", hold: UniqueHold | None = None, **fields: object) -> NewJob:
    return new(unique_key=key, unique_hold=hold or UniqueHold(), **fields)


def insert_one(store: Store, job: NewJob) -> tuple[int, bool]:
    (got,) = store.insert_jobs([job])
    return got.id, got.duplicate


def finish(store: Store, outcome: Outcome, node: str = "n1") -> None:
    (job,) = claim(store, node=node)
    error = None if outcome is Outcome.SUCCEEDED else err()
    store.complete([Completion(job=job, node_id=node, outcome=outcome, error=error)])


def test_a_taken_key_returns_the_holder_marked_kept(store: Store) -> None:
    first = store.insert_jobs([keyed()])[0]
    again = store.insert_jobs([keyed(raw_payload='{"n": 2}')])[0]
    assert not first.duplicate
    assert again.duplicate and again.conflict == "kept" and again.id == first.id
    assert again.payload == {"n": 1}, "kept as it was"
    assert len(store.list_jobs(JobFilter())) == 1


def test_a_waiting_holder_is_replaced_when_asked(store: Store) -> None:
    first = store.insert_jobs([keyed(delay=HOUR)])[0]
    later = keyed(raw_payload='{"n": 2}', priority=5, replace=frozenset({"payload"}))
    got = store.insert_jobs([later])[0]
    assert got.conflict == "replaced" and got.id == first.id
    stored = store.get_job(first.id)
    assert stored is not None and stored.payload == {"n": 2}
    assert stored.priority == 0 and stored.available_at == first.available_at, "only the payload"
    sooner = keyed(replace=frozenset({"run_at", "priority"}), priority=5)
    moved = store.insert_jobs([sooner])[0]
    assert moved.state is JobState.AVAILABLE and moved.priority == 5
    assert moved.payload == {"n": 2}


def test_a_running_holder_is_never_replaced(store: Store) -> None:
    store.insert_jobs([keyed()])
    running = claim(store)[0]
    got = store.insert_jobs([keyed(raw_payload='{"n": 2}', replace=frozenset({"payload"}))])[0]
    assert got.conflict == "kept" and got.id == running.id
    stored = store.get_job(running.id)
    assert stored is not None and stored.payload == {"n": 1}


def test_waiting_only_keys_are_free_once_the_holder_runs(store: Store) -> None:
    waiting_only = UniqueHold(while_running=False)
    first = store.insert_jobs([keyed(hold=waiting_only)])[0]
    assert insert_one(store, keyed(hold=waiting_only)) == (first.id, True)
    claim(store)
    second_id, duplicate = insert_one(store, keyed(hold=waiting_only))
    assert not duplicate and second_id != first.id
    assert insert_one(store, keyed(hold=waiting_only)) == (second_id, True)


@pytest.mark.parametrize(
    "outcome", [Outcome.SUCCEEDED, Outcome.FAILED, Outcome.DISCARDED, Outcome.CANCELLED]
)
def test_a_finished_holder_frees_its_key_at_once(store: Store, outcome: Outcome) -> None:
    first = store.insert_jobs([keyed(max_attempts=1)])[0]
    finish(store, outcome)
    second_id, duplicate = insert_one(store, keyed())
    assert not duplicate and second_id != first.id


def test_a_cancelled_waiting_holder_frees_its_key(store: Store) -> None:
    first = store.insert_jobs([keyed()])[0]
    assert store.cancel_job(first.id).outcome is CancelOutcome.CANCELLED
    assert not insert_one(store, keyed())[1]


def test_finished_states_in_the_hold_keep_the_key_for_the_period(store: Store) -> None:
    kept_an_hour = UniqueHold(after=frozenset({JobState.SUCCEEDED}), period=HOUR)
    first = store.insert_jobs([keyed(hold=kept_an_hour)])[0]
    finish(store, Outcome.SUCCEEDED)
    assert insert_one(store, keyed(hold=kept_an_hour)) == (first.id, True)
    # A failure is not among the kept states: its key is free at once.
    failing = UniqueHold(after=frozenset({JobState.SUCCEEDED}), period=HOUR)
    store.insert_jobs([keyed("f", hold=failing, max_attempts=1)])
    finish(store, Outcome.FAILED)
    assert not insert_one(store, keyed("f"))[1]


def test_a_held_finished_key_is_free_after_its_period(store: Store) -> None:
    brief = UniqueHold(after=frozenset({JobState.SUCCEEDED}), period=timedelta(milliseconds=300))
    first = store.insert_jobs([keyed(hold=brief)])[0]
    finish(store, Outcome.SUCCEEDED)
    assert insert_one(store, keyed(hold=brief)) == (first.id, True)
    wait_until(lambda: not insert_one(store, keyed(hold=brief))[1], 10, "the period to end")


def test_without_a_period_a_kept_state_holds_while_archived(store: Store) -> None:
    forever = UniqueHold(after=frozenset({JobState.SUCCEEDED}))
    first = store.insert_jobs([keyed(hold=forever)])[0]
    finish(store, Outcome.SUCCEEDED)
    assert insert_one(store, keyed(hold=forever)) == (first.id, True)
    assert store.prune(timedelta(0), [JobState.SUCCEEDED]) == 1
    assert not insert_one(store, keyed(hold=forever))[1], "pruned: the key is free"


def test_a_rescued_holder_keeps_its_key(store: Store) -> None:
    first = store.insert_jobs([keyed()])[0]
    claim(store, lease=timedelta(milliseconds=1))
    wait_until(lambda: store.rescue(timedelta(hours=1)).released, 10, "the lease to run out")
    rescued = store.get_job(first.id)
    assert rescued is not None and rescued.state is JobState.AVAILABLE
    assert insert_one(store, keyed()) == (first.id, True)


def test_a_retried_job_does_not_take_its_key_back(store: Store) -> None:
    first = store.insert_jobs([keyed(max_attempts=1)])[0]
    finish(store, Outcome.FAILED)
    second_id = insert_one(store, keyed())[0]
    assert store.retry_jobs([first.id]) == [first.id]
    assert insert_one(store, keyed()) == (second_id, True), "the newer job keeps the key"


def test_deleting_the_holder_frees_the_key(store: Store) -> None:
    first = store.insert_jobs([keyed()])[0]
    assert store.delete_job(first.id)
    assert not insert_one(store, keyed())[1]


def test_a_batch_is_unique_within_itself_and_against_the_table(store: Store) -> None:
    held = store.insert_jobs([keyed("old")])[0]
    got = store.insert_jobs(
        [
            keyed("a"),
            new(),
            keyed("a", raw_payload='{"n": 2}'),
            keyed("old"),
            keyed("b", raw_payload='{"n": 3}'),
            keyed("b", raw_payload='{"n": 4}', replace=frozenset({"payload"})),
        ]
    )
    a, plain, a_again, old, b, b_again = got
    assert not a.duplicate and not plain.duplicate and not b.duplicate
    assert a_again.id == a.id and a_again.conflict == "kept"
    assert old.id == held.id and old.conflict == "kept"
    assert b_again.id == b.id and b_again.conflict == "replaced"
    assert b.payload == {"n": 4}, "the later request of the batch replaced the first"
    assert a.id < plain.id < b.id, "ids follow the batch's order"
    assert len(store.list_jobs(JobFilter())) == 4


def test_schedule_runs_hold_their_key_in_the_same_table(store: Store) -> None:
    run = new("tick", unique_key=schedule_key("tick"), schedule="tick")
    first = store.insert_jobs([run])[0]
    assert store.insert_jobs([run])[0].id == first.id
    states = store.schedule_states()
    assert states == [] or states[0].next_run_at == first.available_at


def test_prune_keys_forgets_only_keys_nobody_holds(store: Store) -> None:
    kept = UniqueHold(after=frozenset({JobState.SUCCEEDED}), period=HOUR)
    store.insert_jobs([keyed("done"), keyed("kept", hold=kept)])
    for job in claim(store, limit=2):
        store.complete([Completion(job=job, node_id="n1", outcome=Outcome.SUCCEEDED)])
    store.insert_jobs([keyed("waiting", delay=HOUR)])
    assert store.prune_keys() == 1, "only the key of the finished job that keeps none"
    assert store.prune_keys() == 0
    assert insert_one(store, keyed("waiting"))[1] and insert_one(store, keyed("kept"))[1]
    assert not insert_one(store, keyed("done"))[1]


def test_cancel_flags_a_running_job_for_its_node(store: Store) -> None:
    store.insert_jobs([new(), new()])
    running = claim(store, limit=1, node="n1")[0]
    claim(store, limit=1, node="n2")
    assert store.cancel_requested("n1") == []
    asked = store.cancel_job(running.id)
    assert asked.outcome is CancelOutcome.REQUESTED and not asked.stopped
    assert asked.job is not None and asked.job.cancel_requested_at is not None
    assert store.cancel_requested("n1") == [running.id] and store.cancel_requested("n2") == []
    again = store.cancel_job(running.id)
    assert again.outcome is CancelOutcome.REQUESTED
    assert again.job is not None and again.job.cancel_requested_at == asked.job.cancel_requested_at
    store.complete(
        [Completion(job=running, node_id="n1", outcome=Outcome.CANCELLED, error=err("stop"))]
    )
    done = store.cancel_job(running.id)
    assert done.outcome is CancelOutcome.FINISHED and done.stopped
    assert done.job is not None and done.job.errors[-1].message == "stop"
    assert store.cancel_requested("n1") == []


def test_a_flag_outlives_a_release_so_the_next_node_sees_it(store: Store) -> None:
    store.insert_jobs([new()])
    running = claim(store, node="n1")[0]
    store.cancel_job(running.id)
    store.release("n1", [running.id])
    again = claim(store, node="n2")[0]
    assert again.id == running.id and again.cancel_requested_at is not None


def test_cancelling_a_finished_job_says_so(store: Store) -> None:
    store.insert_jobs([new()])
    finish(store, Outcome.SUCCEEDED)
    (job,) = store.list_jobs(JobFilter())
    result = store.cancel_job(job.id)
    assert result.outcome is CancelOutcome.FINISHED and not result.stopped
    assert result.job is not None and result.job.state is JobState.SUCCEEDED


def test_schema_has_the_keys_table(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION >= 4  # the unique-keys migration is 4


def test_an_old_database_migrates_forward_keeping_pending_schedule_runs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    _schema_at_version_1_with_a_pending_run(backend, tmp_path, schema)
    old = make_store(backend, tmp_path, schema, migrate=False)
    with pytest.raises(SchemaError, match=r"at version 1.*bgjobs migrate"):
        old.open()
    old.close()
    store = make_store(backend, tmp_path, schema)
    try:
        assert store.migrate() == (1, SCHEMA_VERSION)
        (pending,) = store.list_jobs(JobFilter())
        run = new("tick", unique_key=schedule_key("tick"), schedule="tick")
        kept = store.register_schedule(ScheduleRegistration("tick", "every 1m", run), "default")
        assert kept is not None and kept.id == pending.id, "the pending run holds its key"
        assert store.insert_jobs([run])[0].id == pending.id
        # Schedules' queries (migration 5) find the run through the key migration 4 copied.
        state = store.schedule_state("tick")
        assert state is not None and state.next_run_at == pending.available_at
    finally:
        store.close()


def _schema_at_version_1_with_a_pending_run(
    backend: str, tmp_path: Path, schema: str | None
) -> None:
    insert = (
        "INSERT INTO {jobs} (queue, name, payload, max_attempts, available_at, created_at,"
        " scheduled_at, unique_key, schedule) VALUES ('default', 'tick', '{{}}', 1, {at}, {at},"
        " {at}, 'schedule:tick', 'tick')"
    )
    if backend == "sqlite":
        from bgjobs.adapters.sqlite import schema as sqlite_schema

        conn = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        sqlite_schema.migrate(conn.cursor(), 1, 0)
        conn.execute(insert.format(jobs="bgjobs_jobs", at=4_000_000_000_000_000))
        conn.execute("COMMIT")
        conn.close()
        return
    import psycopg
    from psycopg import sql

    from bgjobs.adapters.postgres import schema as pg_schema

    assert schema is not None
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        pg_schema.migrate(conn, schema, 1)
        jobs = sql.Identifier(schema, "bgjobs_jobs").as_string(conn)
        conn.execute(insert.format(jobs=jobs, at="now() + interval '1 hour'").encode())
