"""The shared half of the stores: the decisions both backends apply, and the one SQL vocabulary.

The decisions are pure functions, so they are tested directly here; the contract suite checks
that both stores apply them.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest

from bgjobs.adapters import decisions
from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    Occurrence,
    RunGate,
    ScheduleRecord,
    ScheduleRegistration,
    schedule_key,
)
from bgjobs.adapters.executor import Executor
from bgjobs.adapters.postgres import queries as postgres_queries
from bgjobs.adapters.sqlite import queries as sqlite_queries
from bgjobs.errors import SchemaError
from bgjobs.job import Job, JobState, NewJob, UniqueHold

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def job(**fields: object) -> Job:
    values: dict[str, object] = {
        "id": 7,
        "queue": "scheduled",
        "name": "tick",
        "raw_payload": "{}",
        "state": JobState.SCHEDULED,
        "priority": 0,
        "attempt": 0,
        "max_attempts": 1,
        "available_at": NOW,
        "created_at": NOW,
        "scheduled_at": NOW,
    }
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


def run(at: datetime, queue: str = "scheduled") -> NewJob:
    return NewJob(
        queue=queue,
        name="tick",
        raw_payload="{}",
        max_attempts=1,
        available_at=at,
        unique_key=schedule_key("tick"),
        schedule="tick",
    )


FIRST = run(NOW + timedelta(minutes=1))
OVERDUE = run(NOW + timedelta(seconds=1))
REGISTRATION = ScheduleRegistration(
    "tick", "every 1m", FIRST, overdue_before=NOW + timedelta(seconds=30), overdue_run=OVERDUE
)


def test_schedule_run_inserts_the_first_run_when_there_is_none() -> None:
    assert decisions.schedule_run(REGISTRATION, None, None) == decisions.ScheduleRun(insert=FIRST)


def test_schedule_run_leaves_a_running_run_alone() -> None:
    running = job(reserved_by="node", state=JobState.RUNNING, attempt=1)
    assert decisions.schedule_run(REGISTRATION, running, "every 1m") == decisions.ScheduleRun()


def test_schedule_run_replaces_a_run_of_a_changed_definition_or_queue() -> None:
    pending = job(available_at=NOW + timedelta(hours=1))
    changed = decisions.schedule_run(REGISTRATION, pending, "every 5m")
    assert changed == decisions.ScheduleRun(remove=pending.id, insert=FIRST)
    moved = decisions.schedule_run(REGISTRATION, job(queue="elsewhere"), "every 1m")
    assert moved == decisions.ScheduleRun(remove=pending.id, insert=FIRST)


def test_schedule_run_replaces_an_overdue_run_unless_it_is_in_retry_backoff() -> None:
    overdue = job(available_at=NOW)
    assert decisions.schedule_run(REGISTRATION, overdue, "every 1m") == decisions.ScheduleRun(
        remove=overdue.id, insert=OVERDUE
    )
    retrying = job(available_at=NOW, attempt=1)
    kept = decisions.schedule_run(REGISTRATION, retrying, "every 1m")
    assert kept == decisions.ScheduleRun(keep=retrying)
    on_time = job(available_at=NOW + timedelta(minutes=1))
    assert decisions.schedule_run(REGISTRATION, on_time, None).keep == on_time


def test_schedule_run_keeps_an_overdue_run_of_a_paused_schedule() -> None:
    overdue = job(available_at=NOW)
    paused = decisions.schedule_run(REGISTRATION, overdue, "every 1m", paused=True)
    assert paused == decisions.ScheduleRun(keep=overdue), "the gate records it as skipped"


def test_schedule_run_records_what_it_replaces_and_what_a_removal_missed() -> None:
    missed = ScheduleRecord("tick", Occurrence.COALESCED, NOW, into_next=True)
    gone = ScheduleRecord("tick", Occurrence.REMOVED, NOW)
    registration = replace(
        REGISTRATION,
        missed_records=lambda due: (missed,) if due == NOW else (),
        removed_records=lambda after: (gone,) if after == NOW else (),
    )
    overdue = job(available_at=NOW)
    assert decisions.schedule_run(registration, overdue, "every 1m").records == (missed,)
    back = decisions.schedule_run(registration, None, "every 1m", removed_after=NOW)
    assert back == decisions.ScheduleRun(insert=FIRST, records=(gone,))


def test_the_run_gate_holds_regular_runs_while_paused_and_every_run_while_busy() -> None:
    def gate(paused: bool, busy: bool, regular: bool) -> RunGate:
        return decisions.run_gate(decisions.GateFacts(paused, busy), regular=regular)

    assert gate(paused=True, busy=True, regular=True) is RunGate.PAUSED
    assert gate(paused=True, busy=False, regular=False) is RunGate.RUN, "run-now was asked for"
    assert gate(paused=True, busy=True, regular=False) is RunGate.BUSY
    assert gate(paused=False, busy=False, regular=True) is RunGate.RUN


def test_records_pointing_at_the_next_run_get_its_id() -> None:
    into = ScheduleRecord("tick", Occurrence.COALESCED, NOW, into_next=True)
    other = ScheduleRecord("tick", Occurrence.SKIPPED_MISSED, NOW)
    [resolved, kept] = decisions.resolve_records([into, other], job(id=99))
    assert (resolved.job_id, resolved.into_next) == (99, False) and kept == other
    [lost] = decisions.resolve_records([into], None)
    assert lost.job_id is None, "the insert found the key taken"


def test_removed_runs_leave_a_record_only_for_due_times_that_came() -> None:
    due = job(
        id=1,
        scheduled_at=NOW - timedelta(seconds=1),
        unique_key=schedule_key("tick"),
        schedule="tick",
    )
    ahead = job(id=2, scheduled_at=NOW + timedelta(hours=1), schedule="tick")
    [record] = decisions.removed_records([due, ahead], NOW)
    assert (record.outcome, record.job_id, record.manual) == (Occurrence.REMOVED, 1, False)


def test_history_is_pruned_by_how_its_runs_ended() -> None:
    assert decisions.prunable_history([JobState.SUCCEEDED]) == ["succeeded", ""]
    assert decisions.prunable_history([JobState.FAILED, JobState.DISCARDED]) == [
        "failed",
        "discarded",
    ]


def test_rescue_charges_only_suspects_and_fails_those_out_of_attempts() -> None:
    beside = job(id=1, attempt=3, max_attempts=3, reserved_by="dead", rescues=1)
    spare = job(id=2, attempt=1, max_attempts=3, reserved_by="dead", rescues=2)
    spent = job(id=3, attempt=3, max_attempts=3, reserved_by="dead", rescues=2)
    plan = decisions.plan_rescue([beside, spare, spent], NOW, died=True)
    assert [(r.job.id, r.charged) for r in plan.release] == [(1, False), (2, True)]
    assert [(r.job.id, r.charged) for r in plan.fail] == [(3, True)]
    error = plan.fail[0].error
    assert (error.type, error.attempt, error.at) == ("JobRescued", 3, NOW)
    assert "node dead died" in error.message and "attempt 3 of 3" in error.message
    assert "not counted" in plan.release[0].error.message
    assert "runs by itself from now on" in plan.release[0].error.message
    result = plan.result()
    assert result.released == [beside, spare] and result.failed == [spent]
    assert result.errors[3] == error


def test_a_rescue_by_lease_says_so() -> None:
    (rescued,) = decisions.plan_rescue([job(reserved_by="n", attempt=1)], NOW).release
    assert "the lease of node n ran out" in rescued.error.message
    assert "from rescue 2 on it runs by itself" in rescued.error.message


def test_schema_version_check_names_the_fix() -> None:
    decisions.check_schema_version(SCHEMA_VERSION, "x.db", "sqlite:///x.db")
    with pytest.raises(SchemaError, match=r"Run `bgjobs migrate --database sqlite:///x.db`"):
        decisions.check_schema_version(SCHEMA_VERSION - 1, "x.db", "sqlite:///x.db")
    with pytest.raises(SchemaError, match="Upgrade bgjobs"):
        decisions.check_schema_version(SCHEMA_VERSION + 1, "x.db", "sqlite:///x.db")


def test_deleting_a_running_job_says_what_to_do() -> None:
    error = str(decisions.running_job_error(5, "h:1:a"))
    assert "job 5 is running on node h:1:a" in error
    assert "bgjobs jobs cancel 5" in error and "after it finishes" in error


def test_stats_assembly_counts_each_queue_once_and_ignores_cancelled() -> None:
    stats = decisions.assemble_stats(
        waiting=[("b", 2, 1)],
        running=[("a", "n1", 2), ("a", "n2", 1)],
        failed=[("a", 4)],
        recent=[
            ("a", "succeeded", 5),
            ("a", "failed", 1),
            ("a", "discarded", 1),
            ("c", "cancelled", 9),
        ],
    )
    assert [(s.queue, s.available, s.scheduled, s.running, s.failed) for s in stats] == [
        ("a", 0, 0, 3, 4),
        ("b", 2, 1, 0, 0),
    ], "a queue with only cancelled jobs has nothing to show"
    assert (stats[0].succeeded_recent, stats[0].failed_recent) == (5, 2)
    assert stats[0].running_by_node == {"n1": 2, "n2": 1} and stats[1].running_by_node == {}


def test_listings_merge_newest_first_up_to_the_limit() -> None:
    hot = [job(id=9), job(id=4)]
    archived = [job(id=8, state=JobState.SUCCEEDED), job(id=1, state=JobState.FAILED)]
    assert [j.id for j in decisions.merge_listings(hot, archived, 3)] == [9, 8, 4]
    assert decisions.lists_hot(JobState.RUNNING) and not decisions.lists_archive(JobState.RUNNING)
    assert decisions.lists_archive(JobState.FAILED) and not decisions.lists_hot(JobState.FAILED)
    assert decisions.lists_hot(None) and decisions.lists_archive(None)


def statement_names(module: ModuleType) -> set[str]:
    """Public statements: upper-case strings, and functions rendering one for a call's shape."""
    public = {name: value for name, value in vars(module).items() if not name.startswith("_")}
    names = {name for name, value in public.items() if name.isupper() and isinstance(value, str)}
    names |= {
        name.upper()
        for name, value in public.items()
        if inspect.isfunction(value) and value.__module__ == module.__name__
    }
    return names


# What one dialect needs and the other does without, and why.
SQLITE_ONLY = {
    "COMPLETE_REQUEUE",  # Postgres: one COMPLETE statement with data-modifying CTEs
    "COMPLETE_FINISH",
    "ARCHIVE_INSERT",
    "DELETE_RESCUED",  # Postgres: RESCUE_FAIL deletes and archives in one statement
    "DELETE_RETRIED",  # Postgres: RETRY moves the rows in one statement
    "DELETE_DISCARDED",  # Postgres: DISCARD_WAITING deletes and archives in one statement
    "KEY_JOB",  # Postgres: INSERT_UNIQUE takes the job's id before inserting key and job
}
POSTGRES_ONLY = {
    "COMPLETE",
    "INSERT_NOW",  # the lean one-job enqueue; SQLite pays no round trip per statement
    "INSERT_MANY",
    "LOCK",  # SQLite: every write transaction already excludes all others
    "NOW",  # SQLite: the clock is Python's
    "GET_HOT_FOR_UPDATE",  # SQLite: no row locks
    "DEAD_ROWS",  # SQLite: a deleted row leaves no dead version to vacuum
    "VACUUM_TRY_LOCK",
    "VACUUM",
}


def test_both_dialects_name_the_same_statement_the_same() -> None:
    sqlite, postgres = statement_names(sqlite_queries), statement_names(postgres_queries)
    assert sqlite - postgres == SQLITE_ONLY
    assert postgres - sqlite == POSTGRES_ONLY
    # Every executor operation runs the statement of its name, in both dialects, but for those
    # whose statements are named by variant (INSERT_ONE, EXTEND_SOME, COMPLETE_FINISH...).
    operations = {name.upper() for name in vars(Executor) if not name.startswith("_")}
    by_variant = {"NOW", "LOCK", "INSERT_JOBS", "EXTEND_LEASES", "COMPLETE"}
    assert operations - by_variant <= sqlite & postgres


# unique keys --------------------------------------------------------------------------------
HOLD = UniqueHold()


def holds(state: JobState, hold: UniqueHold = HOLD, **fields: object) -> decisions.KeyHold:
    holder = job(state=state, unique_key="k", **fields)
    return decisions.KeyHold("k", holder.id, hold, holder)


def test_key_taken_judges_the_holder_as_it_is_now() -> None:
    for waiting in (JobState.AVAILABLE, JobState.SCHEDULED):
        assert decisions.key_taken(holds(waiting), None)
    assert decisions.key_taken(holds(JobState.RUNNING), None)
    assert not decisions.key_taken(holds(JobState.RUNNING, UniqueHold(while_running=False)), None)
    for finished in (JobState.SUCCEEDED, JobState.FAILED, JobState.DISCARDED, JobState.CANCELLED):
        assert not decisions.key_taken(holds(finished, finished_at=NOW), None)
    gone = decisions.KeyHold("k", 7, HOLD, None)
    retried = decisions.KeyHold("k", 7, HOLD, job(unique_key=None))
    assert not decisions.key_taken(gone, None) and not decisions.key_taken(retried, None)


def test_a_kept_finished_state_holds_for_its_period_or_while_archived() -> None:
    day = UniqueHold(after=frozenset({JobState.SUCCEEDED}), period=timedelta(days=1))
    done = holds(JobState.SUCCEEDED, day, finished_at=NOW)
    assert decisions.judged_by_time([done]) and not decisions.judged_by_time(
        [holds(JobState.AVAILABLE)]
    )
    assert decisions.key_taken(done, NOW + timedelta(hours=23))
    assert not decisions.key_taken(done, NOW + timedelta(days=1))
    forever = holds(JobState.SUCCEEDED, UniqueHold(after=frozenset({JobState.SUCCEEDED})))
    assert not decisions.judged_by_time([forever]) and decisions.key_taken(forever, None)


def test_a_batch_keeps_the_first_request_of_each_key_and_folds_in_replacements() -> None:
    def request(key: str | None, payload: str, replace: frozenset[str] = frozenset()) -> NewJob:
        return NewJob("q", "w", payload, 1, unique_key=key, replace=replace)

    batch = decisions.unique_batch(
        [
            request("a", "1"),
            request(None, "2"),
            request("a", "3"),
            request("a", "4", frozenset({"payload"})),
        ]
    )
    assert [j.raw_payload for j in batch.jobs] == ["4", "2"]
    assert batch.jobs[0].replace == frozenset({"payload"})
    assert batch.became == [0, 1, 0, 0]
    assert batch.conflicts == [None, None, "kept", "replaced"]


def test_plan_keys_takes_over_replaces_or_keeps() -> None:
    free = holds(JobState.SUCCEEDED, finished_at=NOW)
    waiting = decisions.KeyHold("w", 8, HOLD, job(id=8, unique_key="w"))
    running = decisions.KeyHold("r", 9, HOLD, job(id=9, unique_key="r", state=JobState.RUNNING))
    payload = frozenset({"payload"})
    requests = [
        NewJob("q", "w", "{}", 1, unique_key="k"),
        NewJob("q", "w", "{}", 1, unique_key="w", replace=payload),
        NewJob("q", "w", "{}", 1, unique_key="r", replace=payload),
        NewJob("q", "w", "{}", 1, unique_key="gone"),
    ]
    plan = decisions.plan_keys(requests, {"k": free, "w": waiting, "r": running}, None)
    assert plan.take_over == [(requests[0], free.job_id)]
    assert plan.replace == [(8, requests[1])]
    assert list(plan.keep) == ["r"] and plan.vanished == [requests[3]]
