"""Every event type is really sent somewhere, and the built-in listeners render events."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.conftest import PG_URL, Recorder, wait_until

import bgjobs
from bgjobs import events
from bgjobs.adapters.base import Store
from bgjobs.job import Job, JobError, JobState
from bgjobs.runtime.app import State

DOCS = Path(__file__).resolve().parents[1] / "docs" / "concepts.md"
BASES = {events.Event, events.JobEvent, events.QueueEvent, events.RuntimeEvent}


def concrete_events() -> list[type[events.Event]]:
    return [
        cls
        for _, cls in inspect.getmembers(events, inspect.isclass)
        if issubclass(cls, events.Event) and cls not in BASES
    ]


@pytest.mark.parametrize("cls", concrete_events(), ids=lambda c: c.__name__)
def test_every_event_type_is_in_the_documented_events_table(cls: type[events.Event]) -> None:
    """Emission is asserted at run time by the tests that provoke each event; this keeps the
    events table in docs/concepts.md complete."""
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("| `")]
    assert any(f"`{cls.__name__}`" in row.split(" | ")[0] for row in rows), (
        f"{cls.__name__} is missing from the events table in {DOCS}"
    )


def test_a_plain_run_emits_its_lifecycle_events_at_run_time(
    store_factory: Callable[..., Store],
) -> None:
    """Migrated, JobReserved and the polling/runtime events, seen by a listener in a real run
    on a database bgjobs has never touched (so the migration happens in start())."""
    recorder = Recorder()
    bg = (
        bgjobs.new(store_factory())
        .with_event_listener(recorder)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )
    with bg:
        job = bg.enqueue("w", {})
        wait_until(lambda: recorder.of(events.JobSucceeded), 10, "the job to succeed")
    migrated = recorder.of(events.Migrated)
    assert len(migrated) == 1 and migrated[0].from_version == 0
    assert migrated[0].to_version >= 1
    reserved = recorder.of(events.JobReserved)
    assert [e.job.id for e in reserved] == [job.id] and reserved[0].node_id == bg.node_id
    assert [e.queue for e in recorder.of(events.QueuePollingStarted)] == ["q"]
    assert [e.queue for e in recorder.of(events.QueuePollingStopped)] == ["q"]
    kinds = recorder.kinds()
    order = ["RuntimeStarted", "JobReserved", "RuntimeStopping", "RuntimeStopped"]
    assert [k for k in kinds if k in order] == order


@pytest.mark.postgres
def test_a_dropped_listen_connection_is_wakeup_lost_then_restored(pg_schema: str) -> None:
    """The LISTEN backend is terminated by the server: WakeupLost, then WakeupRestored once the
    listener has reconnected, and a job enqueued afterwards still runs."""
    import psycopg

    app = f"bgjobs-wakeup-{pg_schema}"
    recorder = Recorder()
    store = bgjobs.postgres(PG_URL, schema=pg_schema, connect_kwargs={"application_name": app})
    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )
    with bg, psycopg.connect(PG_URL, autocommit=True) as admin:

        def terminate_listener() -> bool:
            row = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s AND query ILIKE 'LISTEN%%'",
                (app,),
            ).fetchone()
            return row is not None and row[0] > 0

        wait_until(terminate_listener, 10, "the LISTEN connection to be there and terminated")
        wait_until(lambda: recorder.of(events.WakeupLost), 10, "WakeupLost")
        wait_until(lambda: recorder.of(events.WakeupRestored), 15, "WakeupRestored")
        bg.enqueue("w", {})
        wait_until(lambda: recorder.of(events.JobSucceeded), 10, "a job after the reconnect")
    assert recorder.of(events.WakeupLost)[0].error
    kinds = [k for k in recorder.kinds() if k.startswith("Wakeup")]
    assert kinds[:2] == ["WakeupLost", "WakeupRestored"]


def job() -> Job:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Job(
        id=7,
        queue="q",
        name="send",
        raw_payload="{}",
        state=JobState.RUNNING,
        priority=0,
        attempt=2,
        max_attempts=5,
        available_at=now,
        created_at=now,
        scheduled_at=now,
    )


def test_event_to_dict_is_json_ready() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    error = JobError(at=at, attempt=2, type="ValueError", message="bad")
    event = events.JobFailed(at=at, job=job(), error=error, retry_at=at + timedelta(seconds=4))
    data = json.loads(json.dumps(events.event_to_dict(event)))
    assert data["event"] == "JobFailed" and data["job"]["id"] == 7
    assert data["error"]["message"] == "bad" and data["retry_at"].startswith("2026-01-01T00:00:04")


def test_logging_listener_logs_failures_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    listener = events.logging_listener()
    with caplog.at_level(logging.INFO, logger="bgjobs"):
        listener(events.JobStarted(at=at, job=job()))
        listener(events.JobDiscarded(at=at, job=job(), error=JobError(at, 2, "E", "gone")))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "JobStarted send#7 queue=q attempt=2"),
        (logging.WARNING, "JobDiscarded send#7 queue=q attempt=2 E: gone"),
    ]


# Store and maintenance failures, provoked for real: a table the runtime needs is dropped under it.


DropTable = Callable[[str], None]


@pytest.fixture
def drop_table(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> DropTable:
    """Drops one of bgjobs' tables in this test's database, from a connection of its own."""

    def drop(table: str) -> None:
        if backend == "sqlite":
            with contextlib.closing(sqlite3.connect(tmp_path / "jobs.db", timeout=10)) as conn:
                conn.execute(f"DROP TABLE {table}")
            return
        import psycopg

        schema = request.getfixturevalue("pg_schema")
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP TABLE "{schema}".{table}')

    return drop


def failing_runtime(
    store_factory: Callable[..., Store], recorder: Recorder, *, heartbeat: float = 5.0
) -> bgjobs.BgJobs:
    return (
        bgjobs.new(store_factory())
        .with_event_listener(recorder)
        .with_event_listener(events.logging_listener())
        .with_heartbeat(heartbeat, max(heartbeat * 3, 1.0))
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )


def assert_reported_and_serialisable(event: events.Event, caplog: pytest.LogCaptureFixture) -> None:
    data = json.loads(json.dumps(events.event_to_dict(event)))
    assert data["event"] == event.kind and data["error"] and data["at"]
    logged = [r for r in caplog.records if r.getMessage() == event.describe()]
    assert logged and logged[0].levelno == logging.WARNING, event.describe()


def test_a_failing_store_call_is_a_store_error_and_the_queue_reports_its_own_name(
    store_factory: Callable[..., Store], drop_table: DropTable, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    bg = failing_runtime(store_factory, recorder)
    caplog.set_level(logging.INFO, logger="bgjobs")
    with bg:
        drop_table("bgjobs_jobs")

        def claim_failed() -> bool:
            return any(e.operation == "claim" for e in recorder.of(events.StoreError))

        wait_until(claim_failed, 10, "StoreError for the failed claim")
        wait_until(lambda: recorder.of(events.QueueError), 10, "QueueError from the queue loop")
        with pytest.raises(Exception, match=r"(?i)bgjobs_jobs"):
            bg.enqueue("w", {})
    store_errors = recorder.of(events.StoreError)
    assert {"claim", "insert_jobs"} <= {e.operation for e in store_errors}
    assert {e.queue for e in recorder.of(events.QueueError)} == {"q"}, "a real queue name only"
    for event in store_errors[:1] + recorder.of(events.QueueError)[:1]:
        assert_reported_and_serialisable(event, caplog)


def test_a_failing_maintenance_step_is_a_maintenance_error_naming_the_step(
    store_factory: Callable[..., Store], drop_table: DropTable, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    bg = failing_runtime(store_factory, recorder, heartbeat=0.05)
    caplog.set_level(logging.INFO, logger="bgjobs")
    with bg:
        drop_table("bgjobs_nodes")
        wait_until(lambda: recorder.of(events.MaintenanceError), 10, "a MaintenanceError")
        bg.enqueue("w", {})  # the queue and the rest of the store still work
        wait_until(lambda: recorder.of(events.JobSucceeded), 10, "the job to run")
    assert bg.state is State.STOPPED, "leaving the (dropped) node registry failed, stop did not"
    failure = recorder.of(events.MaintenanceError)[0]
    assert failure.task == "heartbeat" and "bgjobs_nodes" in failure.error
    operations = {e.operation for e in recorder.of(events.StoreError)}
    assert {"heartbeat", "remove_node"} <= operations
    assert not recorder.of(events.QueueError)
    assert_reported_and_serialisable(failure, caplog)
