"""Every event type is really sent somewhere, and the built-in listeners render events."""

from __future__ import annotations

import inspect
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bgjobs import events
from bgjobs.job import Job, JobError, JobState

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
