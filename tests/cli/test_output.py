"""Plain and JSON event lines, and job records as JSON."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bgjobs.cli.output import EventPrinter, event_json, event_level, event_line, job_to_dict
from bgjobs.events import (
    JobDiscarded,
    JobFailed,
    JobSucceeded,
    MaintenanceError,
    QueueError,
    RuntimeStarted,
    StoreError,
)
from bgjobs.job import Job, JobError, JobState

AT = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
JOB = Job(
    id=7,
    queue="default",
    name="send_email",
    raw_payload='{"to":"ada"}',
    state=JobState.RUNNING,
    priority=0,
    attempt=1,
    max_attempts=3,
    available_at=AT,
    created_at=AT,
    scheduled_at=AT,
)
ERROR = JobError(at=AT, attempt=1, type="OSError", message="disk full", traceback="Trace...")


def test_plain_lines_are_time_level_description() -> None:
    line = event_line(JobSucceeded(at=AT, job=JOB, duration=timedelta(milliseconds=3)))
    assert line == (
        "2025-03-01T12:00:00.123Z INFO  JobSucceeded send_email#7 queue=default attempt=1 in 3.0ms"
    )
    assert event_level(JobFailed(at=AT, job=JOB, error=ERROR, retry_at=AT)) == "WARN"
    assert event_level(JobDiscarded(at=AT, job=JOB, error=ERROR)) == "ERROR"
    assert event_level(QueueError(at=AT, queue="q", error="db down")) == "ERROR"
    assert event_level(StoreError(at=AT, operation="claim", error="db down")) == "ERROR"
    assert event_level(MaintenanceError(at=AT, task="rescue", error="db down")) == "ERROR"


def test_json_lines_carry_the_event_fields() -> None:
    data = json.loads(event_json(JobFailed(at=AT, job=JOB, error=ERROR, retry_at=AT)))
    assert data["event"] == "JobFailed" and data["level"] == "WARN"
    assert data["job"] == {"id": 7, "name": "send_email", "queue": "default", "attempt": 1}
    assert data["error"]["message"] == "disk full"
    assert data["retry_at"] == AT.isoformat()


def test_printer_writes_one_flushed_line_per_event() -> None:
    stream = io.StringIO()
    printer = EventPrinter(as_json=True, stream=stream)
    printer(RuntimeStarted(at=AT, node_id="host:1:abc"))
    printer(QueueError(at=AT, queue="q", error="line one\nline two"))
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["RuntimeStarted", "QueueError"]


def test_job_to_dict_survives_a_corrupt_payload() -> None:
    data = job_to_dict(replace(JOB, raw_payload="{not json", errors=(ERROR,)))
    assert data["payload"] == "{not json"
    assert data["errors"][0]["type"] == "OSError"
    assert data["state"] == "running" and data["available_at"] == AT.isoformat()
