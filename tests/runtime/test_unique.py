"""Unique jobs through the library: the keys users get, the options they choose, the events."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from tests.conftest import PG_URL, Recorder, wait_until

import bgjobs
from bgjobs import JobState, Unique
from bgjobs.adapters.base import JobFilter, Store
from bgjobs.events import JobDeduplicated, JobEnqueued
from bgjobs.unique import canonical_json

HOUR = timedelta(hours=1)


def noop(job: bgjobs.Job) -> None:
    pass


def build(store: Store, recorder: Recorder | None = None, handler: Any = noop) -> bgjobs.BgJobs:
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue("mail")
        .with_worker(bgjobs.worker("send", handler))
        .with_worker(bgjobs.worker("other", noop))
    )
    if recorder is not None:
        spec = spec.with_event_listener(recorder)
    return spec.build()


def test_the_default_key_is_the_worker_and_the_whole_payload(store: Store) -> None:
    recorder = Recorder()
    bg = build(store, recorder)
    first = bg.enqueue("send", {"to": "ada", "n": 1}, unique=Unique())
    same = bg.enqueue("send", {"n": 1, "to": "ada"}, unique=Unique())  # key order is no matter
    other_payload = bg.enqueue("send", {"to": "ada", "n": 2}, unique=Unique())
    other_worker = bg.enqueue("other", {"to": "ada", "n": 1}, unique=Unique())
    assert not first.duplicate and same.duplicate and same.id == first.id
    assert not other_payload.duplicate and not other_worker.duplicate
    assert [e.job.id for e in recorder.of(JobEnqueued)] == [
        first.id,
        other_payload.id,
        other_worker.id,
    ]
    (dedup,) = recorder.of(JobDeduplicated)
    assert dedup.job.id == first.id and not dedup.replaced
    assert "send|payload:" in (first.unique_key or "")


def test_fields_and_custom_keys(store: Store) -> None:
    bg = build(store)
    by_user = Unique(fields=("user_id",))
    first = bg.enqueue("send", {"user_id": 7, "at": "09:00"}, unique=by_user)
    assert bg.enqueue("send", {"user_id": 7, "at": "10:00"}, unique=by_user).id == first.id
    assert not bg.enqueue("send", {"user_id": 8, "at": "09:00"}, unique=by_user).duplicate
    mine = bg.enqueue("send", {"x": 1}, unique=Unique(key="report:2030-01"))
    assert bg.enqueue("send", {"x": 2}, unique=Unique(key="report:2030-01")).id == mine.id
    assert mine.unique_key == "send|key:report:2030-01"
    assert not bg.enqueue("other", {"x": 1}, unique=Unique(key="report:2030-01")).duplicate


def test_replace_while_waiting_moves_the_run_time(store: Store) -> None:
    recorder = Recorder()
    bg = build(store, recorder)
    debounce = Unique(key="sync:7", on_conflict="replace", replace=("payload", "run_at"))
    first = bg.enqueue("send", {"v": 1}, delay=HOUR, unique=debounce)
    again = bg.enqueue("send", {"v": 2}, delay=2 * HOUR, unique=debounce)
    assert again.id == first.id and again.conflict == "replaced"
    assert again.payload == {"v": 2} and again.available_at > first.available_at
    (event,) = recorder.of(JobDeduplicated)
    assert event.replaced and event.job.payload == {"v": 2}


def test_enqueue_many_is_unique_within_the_batch(store: Store) -> None:
    bg = build(store)
    got = bg.enqueue_many(
        [
            bgjobs.JobRequest("send", {"n": 1}, unique=Unique()),
            bgjobs.JobRequest("send", {"n": 1}, unique=Unique()),
            ("send", {"n": 1}),  # not unique: always inserted
        ]
    )
    assert [j.duplicate for j in got] == [False, True, False]
    assert got[1].id == got[0].id and len(store.list_jobs(JobFilter())) == 2


@pytest.mark.parametrize(
    ("unique", "message"),
    [
        ("yes", "must be a bgjobs.Unique"),
        (Unique(key="a", fields=("b",)), "not both"),
        (Unique(key=""), "non-empty string"),
        (Unique(key="x" * 501), "up to 500"),
        (Unique(fields=("missing",)), "'missing', which the payload does not have"),
        (Unique(fields="user_id"), "tuple of payload keys"),  # type: ignore[arg-type]
        (Unique(states={JobState.RUNNING}), "must include JobState.AVAILABLE"),
        (Unique(states={"available", "scheduled", "sleeping"}), "unknown state 'sleeping'"),
        (Unique(period=HOUR), "add the finished states"),
        (Unique(states=Unique.WAITING | {JobState.SUCCEEDED}, period=-HOUR), "positive"),
        (Unique(on_conflict="merge"), 'must be "keep" or "replace"'),  # type: ignore[arg-type]
        (Unique(on_conflict="replace", replace=("queue",)), "payload, run_at, priority"),
    ],
)
def test_bad_unique_options_are_refused_before_anything_is_written(
    store: Store, unique: Any, message: str
) -> None:
    bg = build(store)
    with pytest.raises(bgjobs.ConfigError, match=message):
        bg.enqueue("send", {"user_id": 1}, unique=unique)
    assert store.list_jobs(JobFilter()) == []


def test_canonical_json_ignores_key_order_and_spacing() -> None:
    assert canonical_json({"b": [1, {"d": 2, "c": 3}], "a": "é"}) == (
        '{"a":"é","b":[1,{"c":3,"d":2}]}'
    )


def test_a_job_frees_its_key_when_it_finishes_and_keeps_it_while_it_runs(
    store: Store, started: Callable
) -> None:
    release = threading.Event()

    def slow(job: bgjobs.Job) -> None:
        release.wait(10)

    bg = started(build(store, handler=slow))
    first = bg.enqueue("send", {"n": 1}, unique=Unique())
    wait_until(lambda: store.list_jobs(JobFilter(state=JobState.RUNNING)), 10, "it to run")
    assert bg.enqueue("send", {"n": 1}, unique=Unique()).id == first.id
    waiting_only = Unique(states=Unique.WAITING)
    queued = bg.enqueue("send", {"n": 2}, unique=waiting_only)
    release.set()
    wait_until(
        lambda: len(store.list_jobs(JobFilter(state=JobState.SUCCEEDED))) == 2, 10, "both done"
    )
    again = bg.enqueue("send", {"n": 1}, unique=Unique(), delay=HOUR)
    assert not again.duplicate and again.id not in (first.id, queued.id)


def test_succeeded_within_a_period_keeps_the_key(store: Store, started: Callable) -> None:
    bg = started(build(store))
    daily = Unique(states=Unique.UNFINISHED | {JobState.SUCCEEDED}, period=timedelta(days=1))
    first = bg.enqueue("send", {"report": "2030-01-01"}, unique=daily)
    wait_until(lambda: store.list_jobs(JobFilter(state=JobState.SUCCEEDED)), 10, "it to succeed")
    again = bg.enqueue("send", {"report": "2030-01-01"}, unique=daily)
    assert again.id == first.id and again.state is JobState.SUCCEEDED


def test_maintenance_forgets_keys_nobody_holds(
    store: Store, backend: str, request: pytest.FixtureRequest, started: Callable
) -> None:
    bg = started(
        bgjobs.new(store)
        .with_heartbeat(timedelta(milliseconds=100), timedelta(seconds=5))
        .with_queue(bgjobs.queue("mail").with_worker(bgjobs.worker("send", noop)))
        .build()
    )
    bg.enqueue_many([bgjobs.JobRequest("send", {"n": n}, unique=Unique()) for n in range(3)])
    wait_until(lambda: key_rows(store, backend, request) == 0, 10, "finished jobs' keys pruned")


def key_rows(store: Store, backend: str, request: pytest.FixtureRequest) -> int:
    """Rows of the keys table, read with plain SQL."""
    if backend == "sqlite":
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        try:
            return int(conn.execute("SELECT count(*) FROM bgjobs_unique_keys").fetchone()[0])
        finally:
            conn.close()
    import psycopg
    from psycopg import sql

    table = sql.Identifier(request.getfixturevalue("pg_schema"), "bgjobs_unique_keys")
    with psycopg.connect(PG_URL) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    assert row is not None
    return int(row[0])
