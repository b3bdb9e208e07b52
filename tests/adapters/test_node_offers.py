"""What nodes publish they run, and the store operations rolling deploys rely on: claiming only
some names, jobs waiting for a worker, discarding them. Runs on every backend (the contract)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.conftest import make_store

from bgjobs.adapters.base import (
    SCHEMA_VERSION,
    ClaimRequest,
    Completion,
    NodeInfo,
    Outcome,
    Store,
    describe_offers,
    queues_running,
    unserved,
)
from bgjobs.errors import SchemaError
from bgjobs.job import JobError, JobState, NewJob

LEASE = timedelta(seconds=30)


def new(name: str, queue: str = "work", **fields: object) -> NewJob:
    return NewJob(queue=queue, name=name, raw_payload="{}", max_attempts=3, **fields)  # type: ignore[arg-type]


def claim(store: Store, names: tuple[str, ...] | None, *, blocking: bool = False) -> list[str]:
    request = ClaimRequest("work", "n1", 10, LEASE, blocking=blocking, names=names)
    return [job.name for job in store.claim(request)]


def node(node_id: str, workers: dict[str, tuple[str, ...]], **schedules: str) -> NodeInfo:
    now = datetime.now(UTC)
    return NodeInfo(node_id, "h", 1, now, now, tuple(workers), workers, schedules)


def test_a_node_publishes_its_workers_per_queue_and_its_schedules(store: Store) -> None:
    store.heartbeat(node("h:1:a", {"work": ("a", "b"), "scheduled": ("tick",)}, tick="every 1m"))
    store.heartbeat(node("h:2:b", {"work": ("a",)}))
    first, second = store.list_nodes()
    assert first.workers == {"work": ("a", "b"), "scheduled": ("tick",)}
    assert first.schedules == {"tick": "every 1m"} and second.schedules == {}
    assert first.runs("work", "b") and not second.runs("work", "b")
    assert not first.runs("scheduled", "b"), "per queue: b runs on work only"
    assert queues_running([first, second], "b") == ["work"]
    assert describe_offers([first, second]) == "scheduled: tick; work: a, b"
    store.heartbeat(node("h:2:b", {"work": ("a", "b")}))  # a refresh replaces what it offers
    assert store.list_nodes()[1].workers == {"work": ("a", "b")}


def test_a_claim_takes_only_the_given_names_in_claim_order(store: Store) -> None:
    store.insert_jobs([new("b"), new("a"), new("b"), new("a", priority=-1), new("c")])
    assert claim(store, ("a",)) == ["a", "a"], "priority first, as an unfiltered claim"
    assert claim(store, ()) == [], "a node with no worker on the queue claims nothing"
    assert claim(store, ("b", "c")) == ["b", "b", "c"]


def test_a_blocking_claim_leaves_a_head_it_cannot_run(store: Store) -> None:
    store.insert_jobs([new("b"), new("a")])
    assert claim(store, ("a",), blocking=True) == [], "b is the head: nothing overtakes it"
    assert claim(store, ("a", "b"), blocking=True) == ["b"]


def test_next_due_counts_only_the_names_a_claim_would_take(store: Store) -> None:
    now = store.now()
    store.insert_jobs([new("b", available_at=now - timedelta(seconds=5))])
    later = store.insert_jobs([new("a", priority=3, delay=timedelta(hours=1))])[0]
    assert store.next_due_at("work", ("a",)) == later.available_at
    assert store.next_due_at("work", ("c",)) is None
    assert store.next_due_at("work") is not None and store.next_due_at("work") < later.available_at


def test_waiting_names_counts_due_unclaimed_jobs_per_queue_and_name(store: Store) -> None:
    now = store.now()
    store.insert_jobs(
        [
            new("b", available_at=now - timedelta(seconds=9)),
            new("b"),
            new("a"),
            new("b", delay=timedelta(hours=1)),  # not due: not waiting yet
            new("b", queue="other"),
        ]
    )
    claim(store, ("a",))  # running: not waiting
    waiting = store.waiting_names()
    assert [(w.queue, w.name, w.count) for w in waiting] == [("other", "b", 1), ("work", "b", 2)]
    assert waiting[1].since <= now - timedelta(seconds=8)
    served = [node("h:1:a", {"work": ("a", "b")})]
    assert [(w.queue, w.name) for w in unserved(waiting, served)] == [("other", "b")]


def test_discard_unserved_archives_due_waiting_jobs_with_the_error(store: Store) -> None:
    retried, fresh, *others = store.insert_jobs(
        [new("b"), new("b"), new("b", delay=timedelta(hours=1)), new("a"), new("b", queue="x")]
    )
    # ``retried`` failed once and is due again: its error history keeps growing.
    (held,) = store.claim(ClaimRequest("work", "n1", 1, LEASE, names=("b",)))
    assert held.id == retried.id
    store.complete(
        [
            Completion(
                job=held,
                node_id="n1",
                outcome=Outcome.RETRY,
                error=JobError(at=store.now(), attempt=1, type="X", message="once"),
            )
        ]
    )
    error = JobError(at=store.now(), attempt=0, type="UnknownWorker", message="nobody runs b")
    gone = store.discard_unserved("work", "b", error)
    assert sorted(job.id for job in gone) == [retried.id, fresh.id]
    by_id = {job.id: job for job in gone}
    assert by_id[retried.id].state is JobState.DISCARDED
    assert by_id[retried.id].finished_at is not None
    assert [(e.type, e.attempt) for e in by_id[retried.id].errors] == [
        ("X", 1),
        ("UnknownWorker", 1),
    ]
    assert [(e.type, e.attempt) for e in by_id[fresh.id].errors] == [("UnknownWorker", 0)]
    stored = store.get_job(fresh.id)
    assert stored is not None and stored.state is JobState.DISCARDED
    assert stored.errors[-1].message == "nobody runs b"
    for job in others:  # not due, another name, another queue: untouched
        kept = store.get_job(job.id)
        assert kept is not None and not kept.state.is_finished


def test_discard_unserved_leaves_jobs_a_registered_node_runs(store: Store) -> None:
    job = store.insert_jobs([new("b")])[0]
    store.heartbeat(node("h:1:new", {"work": ("a", "b")}))  # registered since the decision
    error = JobError(at=store.now(), attempt=0, type="UnknownWorker", message="nobody runs b")
    assert store.discard_unserved("work", "b", error) == []
    kept = store.get_job(job.id)
    assert kept is not None and kept.state is JobState.AVAILABLE


def test_a_version_1_database_migrates_forward_and_keeps_its_nodes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None
    _create_version_1(backend, tmp_path, schema)
    with pytest.raises(SchemaError, match=rf"version 1, this bgjobs needs {SCHEMA_VERSION}"):
        make_store(backend, tmp_path, schema, migrate=False).open()
    store = make_store(backend, tmp_path, schema)
    try:
        assert store.open() == (1, SCHEMA_VERSION)
        (old,) = store.list_nodes()
        assert (old.id, old.queues, old.workers, old.schedules) == ("old:1:a", ("work",), {}, {})
        store.heartbeat(node("old:1:a", {"work": ("a",)}))
        assert store.list_nodes()[0].workers == {"work": ("a",)}
    finally:
        store.close()


def _create_version_1(backend: str, tmp_path: Path, schema: str | None) -> None:
    """A database as bgjobs 1 left it: schema version 1 with one node registered."""
    if backend == "sqlite":
        import sqlite3

        from bgjobs.adapters.sqlite import schema as sqlite_schema

        conn = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        sqlite_schema.migrate(cur, 1, 0)
        cur.execute(
            "INSERT INTO bgjobs_nodes (id, host, pid, started_at, heartbeat_at, queues)"
            " VALUES ('old:1:a', 'old', 1, 0, 0, '[\"work\"]')"
        )
        cur.execute("COMMIT")
        conn.close()
        return
    import psycopg
    from tests.conftest import PG_URL

    from bgjobs.adapters.postgres import schema as pg

    assert schema is not None
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        pg.migrate(conn, schema, 1)
        conn.execute(
            pg.compose(
                "INSERT INTO {nodes} (id, host, pid, started_at, heartbeat_at, queues)"
                " VALUES ('old:1:a', 'old', 1, now(), now(), '{{work}}')",
                schema,
            )
        )
