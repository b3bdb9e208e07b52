"""The Store contract. Runs unchanged against every backend (see the `backend` fixture)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    ClaimRequest,
    Completion,
    JobFilter,
    NodeInfo,
    Outcome,
    RescueResult,
    ScheduleRegistration,
    Store,
    schedule_key,
)
from bgjobs.errors import RuntimeStateError
from bgjobs.job import Cancellation, CancelOutcome, JobError, JobState, NewJob

LEASE = timedelta(seconds=30)


def new(name: str = "work", queue: str = "default", **kw: object) -> NewJob:
    fields: dict[str, object] = {
        "queue": queue,
        "name": name,
        "raw_payload": '{"n": 1}',
        "max_attempts": 3,
    }
    fields.update(kw)
    return NewJob(**fields)  # type: ignore[arg-type]


def claim(
    store: Store,
    queue: str = "default",
    limit: int = 10,
    node: str = "n1",
    blocking: bool = False,
    lease: timedelta = LEASE,
) -> list:
    return store.claim(
        ClaimRequest(queue=queue, node_id=node, limit=limit, lease=lease, blocking=blocking)
    )


def err(msg: str = "boom", attempt: int = 1) -> JobError:
    return JobError(at=datetime.now(UTC), attempt=attempt, type="ValueError", message=msg)


def test_schema_is_at_current_version(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)


def test_insert_returns_persisted_jobs(store: Store) -> None:
    jobs = store.insert_jobs([new(priority=3), new("other", delay=timedelta(hours=1))])
    assert [j.name for j in jobs] == ["work", "other"]
    assert jobs[0].id < jobs[1].id
    assert jobs[0].state is JobState.AVAILABLE and jobs[1].state is JobState.SCHEDULED
    fetched = store.get_job(jobs[0].id)
    assert fetched is not None
    assert fetched.payload == {"n": 1} and fetched.priority == 3 and fetched.attempt == 0
    assert fetched.created_at.tzinfo is not None
    assert jobs[1].available_at - jobs[1].created_at >= timedelta(minutes=59)


def test_claim_orders_by_priority_then_time_then_id(store: Store) -> None:
    now = store.now()
    a = store.insert_jobs([new(priority=5)])[0]
    b = store.insert_jobs([new(priority=0, available_at=now - timedelta(seconds=1))])[0]
    c = store.insert_jobs([new(priority=0, available_at=now - timedelta(seconds=5))])[0]
    d = store.insert_jobs([new(priority=0, available_at=now - timedelta(seconds=5))])[0]
    got = claim(store, limit=10)
    assert [j.id for j in got] == [c.id, d.id, b.id, a.id]
    assert all(j.state is JobState.RUNNING and j.attempt == 1 for j in got)
    assert all(j.reserved_by == "n1" and j.lease_expires_at is not None for j in got)


def test_claim_respects_limit_queue_and_due_time(store: Store) -> None:
    store.insert_jobs([new() for _ in range(5)])
    store.insert_jobs([new(queue="other")])
    store.insert_jobs([new(delay=timedelta(hours=1))])
    assert len(claim(store, limit=3)) == 3
    assert len(claim(store, limit=10)) == 2
    assert claim(store, limit=10) == []
    assert len(claim(store, queue="other")) == 1
    assert claim(store, limit=0) == []


def test_two_claimers_never_get_the_same_job(store_factory: Callable[..., Store]) -> None:
    one, two = store_factory(), store_factory()
    one.open()
    two.open()
    one.insert_jobs([new() for _ in range(50)])
    seen: list[int] = []
    for _ in range(10):
        seen += [j.id for j in claim(one, limit=3, node="a")]
        seen += [j.id for j in claim(two, limit=3, node="b")]
    assert len(seen) == 50 and len(set(seen)) == 50


def test_next_due_at(store: Store) -> None:
    assert store.next_due_at("default") is None
    later = store.now() + timedelta(minutes=5)
    store.insert_jobs([new(available_at=later)])
    due = store.next_due_at("default")
    assert due is not None and abs((due - later).total_seconds()) < 0.001


def test_success_archives_and_delete_on_success(store: Store) -> None:
    store.insert_jobs([new(), new()])
    kept, dropped = claim(store)
    results = store.complete(
        [
            Completion(job=kept, node_id="n1", outcome=Outcome.SUCCEEDED),
            Completion(job=dropped, node_id="n1", outcome=Outcome.SUCCEEDED, keep=False),
        ]
    )
    assert [r.applied for r in results] == [True, True]
    archived = store.get_job(kept.id)
    assert archived is not None and archived.state is JobState.SUCCEEDED
    assert archived.finished_at is not None
    assert store.get_job(dropped.id) is None


def test_retry_keeps_error_history_and_delay(store: Store) -> None:
    store.insert_jobs([new()])
    job = claim(store)[0]
    store.complete(
        [
            Completion(
                job=job,
                node_id="n1",
                outcome=Outcome.RETRY,
                error=err("first"),
                delay=timedelta(minutes=10),
            )
        ]
    )
    again = store.get_job(job.id)
    assert again is not None and again.state is JobState.SCHEDULED
    assert again.attempt == 1 and again.reserved_by is None
    assert [e.message for e in again.errors] == ["first"]
    assert again.available_at - store.now() > timedelta(minutes=9)
    assert claim(store) == []


def test_failed_goes_to_archive_with_errors(store: Store) -> None:
    store.insert_jobs([new(max_attempts=1)])
    job = claim(store)[0]
    store.complete([Completion(job=job, node_id="n1", outcome=Outcome.FAILED, error=err("bad"))])
    failed = store.get_job(job.id)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.errors[-1].message == "bad" and failed.errors[-1].type == "ValueError"
    assert [j.id for j in store.list_jobs(JobFilter(state=JobState.FAILED))] == [job.id]


def test_snooze_does_not_spend_an_attempt(store: Store) -> None:
    store.insert_jobs([new()])
    job = claim(store)[0]
    store.complete([Completion(job=job, node_id="n1", outcome=Outcome.SNOOZED, delay=timedelta(0))])
    again = claim(store)[0]
    assert again.id == job.id and again.attempt == 1


def test_completion_is_fenced_to_the_reserving_node(store: Store) -> None:
    store.insert_jobs([new()])
    job = claim(store, node="a")[0]
    stale = Completion(job=job, node_id="b", outcome=Outcome.SUCCEEDED)
    assert store.complete([stale])[0].applied is False
    got = store.get_job(job.id)
    assert got is not None and got.state is JobState.RUNNING


def test_release_puts_jobs_back_without_counting_the_attempt(store: Store) -> None:
    store.insert_jobs([new(), new()])
    jobs = claim(store, node="a")
    released = store.release("a", [j.id for j in jobs])
    assert sorted(j.id for j in released) == sorted(j.id for j in jobs)
    assert all(j.attempt == 0 for j in released)
    assert len(claim(store, node="b")) == 2


def expire_and_rescue(store: Store, node: str = "dead", suspects: bool = False) -> RescueResult:
    """Claim what there is as ``node`` with a lease that runs out at once, then rescue."""
    request = ClaimRequest("default", node, 10, timedelta(milliseconds=1), suspects=suspects)
    assert store.claim(request), "something to claim"
    time.sleep(0.01)
    return store.rescue(timedelta(seconds=30))


def test_rescue_gives_the_attempt_back_to_jobs_that_ran_beside_others(store: Store) -> None:
    one, two = store.insert_jobs([new(max_attempts=3), new(max_attempts=1)])
    result = expire_and_rescue(store)
    assert sorted(j.id for j in result.released) == [one.id, two.id] and result.failed == []
    for job_id in (one.id, two.id):
        back = store.get_job(job_id)
        assert back is not None and back.state is JobState.AVAILABLE
        assert (back.attempt, back.rescues) == (0, 1)
        assert back.errors[-1].type == "JobRescued"
        assert "not counted as an attempt" in result.errors[job_id].message
    assert store.rescue(timedelta(seconds=30)).released == []


def test_a_job_rescued_twice_is_a_suspect_claimed_only_alone(store: Store) -> None:
    one, _ = store.insert_jobs([new(), new()])
    expire_and_rescue(store)
    expire_and_rescue(store)
    assert claim(store) == [], "a plain claim never takes a suspect"
    alone = store.claim(ClaimRequest("default", "n1", 10, LEASE, suspects=True))
    assert [(j.id, j.rescues, j.attempt) for j in alone] == [(one.id, 2, 1)], "one at a time"


def test_waiting_suspects_count_as_waiting_but_are_no_plain_claims_next_job(
    store: Store,
) -> None:
    store.insert_jobs([new()])
    expire_and_rescue(store)
    expire_and_rescue(store)
    (stats,) = store.queue_stats(timedelta(minutes=1))
    assert (stats.available, stats.running) == (1, 0)
    assert store.next_due_at("default") is None, "a runner must not spin on a suspect"
    assert store.suspect_queues(["default", "other"], []) == {"default"}


def test_a_suspect_is_only_for_a_node_with_its_worker(store: Store) -> None:
    (job,) = store.insert_jobs([new()])
    expire_and_rescue(store)
    expire_and_rescue(store)
    # A node without the worker neither drains for the suspect nor claims it.
    assert store.suspect_queues(["default"], [], {"default": ("other",)}) == set()
    request = ClaimRequest("default", "n", 1, timedelta(seconds=30), suspects=True)
    assert store.claim(replace(request, names=("other",))) == []
    assert store.suspect_queues(["default"], [], {"default": ("work",)}) == {"default"}
    assert [j.id for j in store.claim(replace(request, names=("work",)))] == [job.id]


def test_rescue_charges_a_suspect_that_ran_alone(store: Store) -> None:
    (job,) = store.insert_jobs([new(max_attempts=1)])
    expire_and_rescue(store)
    expire_and_rescue(store)
    result = expire_and_rescue(store, suspects=True)
    assert [j.id for j in result.failed] == [job.id] and result.released == []
    assert "counts as attempt 1 of 1" in result.errors[job.id].message
    dead = store.get_job(job.id)
    assert dead is not None and dead.state is JobState.FAILED
    assert [e.type for e in dead.errors] == ["JobRescued"] * 3 and dead.rescues == 3


def test_extend_leases_protects_from_rescue(store: Store) -> None:
    store.insert_jobs([new()])
    claim(store, node="alive", lease=timedelta(milliseconds=1))
    assert store.extend_leases("alive", timedelta(minutes=1)) == 1
    time.sleep(0.01)
    assert store.rescue(timedelta(seconds=30)).released == []


def test_nodes_heartbeat_and_expire(store: Store) -> None:
    now = store.now()
    store.heartbeat(NodeInfo("h:1:a", "h", 1, now, now, ("default",)))
    store.heartbeat(NodeInfo("h:1:a", "h", 1, now, now, ("default", "mail")))
    nodes = store.list_nodes()
    assert [(n.id, n.queues) for n in nodes] == [("h:1:a", ("default", "mail"))]
    time.sleep(0.02)
    store.rescue(timedelta(milliseconds=1))
    assert store.list_nodes() == []


def test_blocking_claim_runs_only_the_head(store: Store) -> None:
    first, second = store.insert_jobs([new(queue="serial"), new(queue="serial")])
    got = claim(store, queue="serial", blocking=True)
    assert [j.id for j in got] == [first.id]
    assert claim(store, queue="serial", blocking=True, node="other") == []
    store.complete(
        [
            Completion(
                job=got[0], node_id="n1", outcome=Outcome.RETRY, error=err(), delay=timedelta(0)
            )
        ]
    )
    again = claim(store, queue="serial", blocking=True)
    assert [j.id for j in again] == [first.id], "a failed head keeps blocking the queue"
    store.complete([Completion(job=again[0], node_id="n1", outcome=Outcome.SUCCEEDED)])
    assert [j.id for j in claim(store, queue="serial", blocking=True)] == [second.id]


def test_schedule_registration_is_idempotent_and_unique(store: Store) -> None:
    due = store.now() + timedelta(minutes=1)
    run = new("tick", unique_key=schedule_key("tick"), schedule="tick", available_at=due)
    reg = ScheduleRegistration(name="tick", definition="every 1m", first_run=run)
    first = store.register_schedule(reg, "default")
    second = store.register_schedule(reg, "default")
    assert first is not None and second is not None and first.id == second.id
    (again,) = store.insert_jobs([run])
    assert again.duplicate and again.id == first.id, "the unique key allows one pending run"
    states = store.schedule_states()
    assert [(s.name, s.running) for s in states] == [("tick", False)]
    assert states[0].next_run_at == first.available_at


def test_schedule_definition_change_reschedules(store: Store) -> None:
    due = store.now() + timedelta(minutes=1)
    run = new("tick", unique_key=schedule_key("tick"), schedule="tick", available_at=due)
    store.register_schedule(ScheduleRegistration("tick", "every 1m", run), "default")
    later = new(
        "tick",
        unique_key=schedule_key("tick"),
        schedule="tick",
        available_at=due + timedelta(hours=1),
    )
    moved = store.register_schedule(ScheduleRegistration("tick", "every 2h", later), "default")
    assert moved is not None and moved.available_at == later.available_at
    assert len(store.list_jobs(JobFilter(name="tick"))) == 1


def test_finishing_a_scheduled_run_inserts_the_next_in_the_same_transaction(store: Store) -> None:
    now = store.now()
    run = new("tick", unique_key=schedule_key("tick"), schedule="tick", available_at=now)
    store.register_schedule(ScheduleRegistration("tick", "every 1m", run), "default")
    job = claim(store)[0]
    assert (
        store.register_schedule(ScheduleRegistration("tick", "every 1m", run), "default") is None
    ), "no second run while one is in progress"
    nxt = new(
        "tick",
        unique_key=schedule_key("tick"),
        schedule="tick",
        available_at=now + timedelta(minutes=1),
    )
    result = store.complete(
        [Completion(job=job, node_id="n1", outcome=Outcome.SUCCEEDED, next_run=nxt)]
    )[0]
    assert result.applied and result.next_run is not None
    assert result.next_run.available_at == nxt.available_at
    state = store.schedule_states()[0]
    assert state.last_outcome == "succeeded" and state.next_run_at == nxt.available_at


def test_queue_stats(store: Store) -> None:
    store.insert_jobs([new(), new(), new(delay=timedelta(hours=1)), new(queue="q2")])
    running = claim(store, limit=1)[0]
    store.complete([Completion(job=running, node_id="n1", outcome=Outcome.FAILED, error=err())])
    claim(store, limit=1)
    store.insert_jobs([new(queue="q2"), new(queue="q2")])
    claim(store, queue="q2", limit=2, node="n2")
    stats = {s.queue: s for s in store.queue_stats(timedelta(minutes=1))}
    d = stats["default"]
    assert (d.available, d.scheduled, d.running, d.failed, d.failed_recent) == (0, 1, 1, 1, 1)
    assert d.running_by_node == {"n1": 1}
    q2 = stats["q2"]
    assert (q2.available, q2.running, q2.running_by_node) == (1, 2, {"n2": 2})


def test_retry_cancel_delete_prune(store: Store) -> None:
    a, b, c = store.insert_jobs([new(max_attempts=1), new(), new()])
    job = claim(store, limit=1)[0]
    store.complete([Completion(job=job, node_id="n1", outcome=Outcome.FAILED, error=err())])
    assert store.retry_jobs([a.id]) == [a.id]
    retried = store.get_job(a.id)
    assert retried is not None and retried.state is JobState.AVAILABLE and retried.attempt == 0
    cancelled = store.cancel_job(b.id)
    assert cancelled.outcome is CancelOutcome.CANCELLED and cancelled.stopped
    assert store.cancel_job(999_999) == Cancellation(CancelOutcome.NOT_FOUND, None)
    running = claim(store, limit=1)[0]
    with pytest.raises(RuntimeStateError, match="running"):
        store.delete_job(running.id)
    waiting = a if running.id != a.id else c
    assert store.delete_job(waiting.id) is True
    assert store.get_job(waiting.id) is None
    assert store.delete_job(waiting.id) is False
    assert store.prune(timedelta(0), [JobState.CANCELLED]) == 1
    assert store.get_job(b.id) is None


def test_list_jobs_filters(store: Store) -> None:
    store.insert_jobs([new("a"), new("b"), new("a", delay=timedelta(hours=1))])
    assert {j.name for j in store.list_jobs(JobFilter(name="a"))} == {"a"}
    assert len(store.list_jobs(JobFilter(state=JobState.SCHEDULED))) == 1
    assert len(store.list_jobs(JobFilter(state=JobState.AVAILABLE))) == 2
    assert len(store.list_jobs(JobFilter(limit=1))) == 1


def test_blocking_claim_waits_while_any_job_of_the_queue_runs(store: Store) -> None:
    [first] = store.insert_jobs([new(queue="serial")])
    running = claim(store, queue="serial", blocking=True)
    assert [j.id for j in running] == [first.id]
    earlier = store.now() - timedelta(hours=1)
    [new_head] = store.insert_jobs([new(queue="serial", available_at=earlier)])
    assert claim(store, queue="serial", blocking=True, node="other") == [], (
        "a new head must not start while another job of a blocking queue runs"
    )
    store.complete([Completion(job=running[0], node_id="n1", outcome=Outcome.SUCCEEDED)])
    assert [j.id for j in claim(store, queue="serial", blocking=True)] == [new_head.id]


def test_a_stale_and_a_current_completion_of_one_job_in_one_batch(store: Store) -> None:
    store.insert_jobs([new()])
    first = claim(store, lease=timedelta(milliseconds=1))[0]
    time.sleep(0.01)
    store.rescue(timedelta(seconds=30))
    second = claim(store)[0]
    assert (second.id, second.attempt) == (first.id, 1), "rescued, then re-claimed by n1"
    assert (first.rescues, second.rescues) == (0, 1), "the rescue count tells the claims apart"
    results = store.complete(
        [
            Completion(job=first, node_id="n1", outcome=Outcome.SUCCEEDED),
            Completion(job=second, node_id="n1", outcome=Outcome.DISCARDED, error=err("current")),
        ]
    )
    assert [r.applied for r in results] == [False, True]
    done = store.get_job(first.id)
    assert done is not None and done.state is JobState.DISCARDED
    assert done.errors[-1].message == "current"


def test_an_overdue_run_in_retry_backoff_keeps_its_attempts(store: Store) -> None:
    now = store.now()
    run = new("tick", unique_key=schedule_key("tick"), schedule="tick", available_at=now)
    store.register_schedule(ScheduleRegistration("tick", "every 1m", run), "default")
    job = claim(store)[0]
    store.complete(
        [Completion(job=job, node_id="n1", outcome=Outcome.RETRY, error=err(), delay=timedelta(0))]
    )
    later = new(
        "tick",
        unique_key=schedule_key("tick"),
        schedule="tick",
        available_at=now + timedelta(minutes=1),
    )
    reg = ScheduleRegistration(
        "tick",
        "every 1m",
        later,
        overdue_before=store.now() + timedelta(seconds=1),
        overdue_run=later,
    )
    pending = store.register_schedule(reg, "default")
    assert pending is not None and (pending.id, pending.attempt) == (job.id, 1)
    assert len(pending.errors) == 1


def test_retry_all_failed_of_one_name(store: Store) -> None:
    jobs = store.insert_jobs([new("a", max_attempts=1), new("b", max_attempts=1), new("a")])
    for job in claim(store, limit=3):
        outcome = Outcome.FAILED if job.max_attempts == 1 else Outcome.DISCARDED
        store.complete([Completion(job=job, node_id="n1", outcome=outcome, error=err())])
    assert store.retry_jobs(all_failed=True, name="a") == [jobs[0].id, jobs[2].id]
    assert store.retry_jobs(all_failed=True, name="a") == []
    back = store.get_job(jobs[2].id)
    assert back is not None and back.state is JobState.AVAILABLE and back.attempt == 0
    assert [e.message for e in back.errors] == ["boom"], "the history stays with the job"
    b = store.get_job(jobs[1].id)
    assert b is not None and b.state is JobState.FAILED


def test_leases_of_some_jobs_and_listing_by_queue_and_state(store: Store) -> None:
    store.insert_jobs([new(), new(), new(queue="other")])
    one, two = claim(store, node="n1", lease=timedelta(milliseconds=1))
    assert store.extend_leases("n1", timedelta(minutes=1), [one.id]) == 1
    assert store.extend_leases("n1", timedelta(minutes=1), []) == 0
    running = store.list_jobs(JobFilter(state=JobState.RUNNING, queue="default"))
    assert [j.id for j in running] == [two.id, one.id]
    assert store.list_jobs(JobFilter(state=JobState.RUNNING, queue="other")) == []
    time.sleep(0.01)
    assert [j.id for j in store.rescue(timedelta(seconds=30)).released] == [two.id]


def test_rescue_appends_to_the_error_history_of_many_jobs(store: Store) -> None:
    store.insert_jobs([new(max_attempts=2) for _ in range(3)] + [new(max_attempts=1)] * 2)
    first = claim(store, limit=3)
    store.complete(
        [Completion(job=j, node_id="n1", outcome=Outcome.RETRY, error=err("first")) for j in first]
    )
    claimed = claim(store, limit=5, node="dead", lease=timedelta(milliseconds=1))
    assert len(claimed) == 5
    time.sleep(0.01)
    result = store.rescue(timedelta(seconds=30))
    assert len(result.released) == 5 and result.failed == [], "ran together: none is charged"
    for job in result.released:
        back = store.get_job(job.id)
        assert back is not None and back.state is JobState.AVAILABLE
        assert back.attempt == job.attempt - 1, "the attempt is given back"
        expected = ["JobRescued"] if job.max_attempts == 1 else ["ValueError", "JobRescued"]
        assert [e.type for e in back.errors] == expected


def test_prune_keeps_recent_jobs_and_other_states(store: Store) -> None:
    store.insert_jobs([new(max_attempts=1), new()])
    failed, done = claim(store, limit=2)
    store.complete(
        [
            Completion(job=failed, node_id="n1", outcome=Outcome.FAILED, error=err()),
            Completion(job=done, node_id="n1", outcome=Outcome.SUCCEEDED),
        ]
    )
    assert store.prune(timedelta(hours=1), [JobState.SUCCEEDED, JobState.FAILED]) == 0
    assert store.prune(timedelta(0), [JobState.SUCCEEDED, JobState.RUNNING]) == 1
    assert store.get_job(done.id) is None
    assert store.get_job(failed.id) is not None
