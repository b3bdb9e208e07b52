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

SRC = Path(events.__file__).resolve().parent
BASES = {events.Event, events.JobEvent, events.QueueEvent, events.RuntimeEvent}


def concrete_events() -> list[type[events.Event]]:
    return [
        cls
        for _, cls in inspect.getmembers(events, inspect.isclass)
        if issubclass(cls, events.Event) and cls not in BASES
    ]


@pytest.mark.parametrize("cls", concrete_events(), ids=lambda c: c.__name__)
def test_every_event_type_is_emitted_by_the_library(cls: type[events.Event]) -> None:
    """bg_jobs defined events it never sent; here each one is constructed outside events.py."""
    sources = [p for p in SRC.rglob("*.py") if p.name != "events.py"]
    assert any(f"{cls.__name__}(" in p.read_text() for p in sources), cls.__name__


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
