"""Output formats: one line per event (plain or JSON), records as JSON, and error messages."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import click
from rich.console import Console
from rich.markup import escape

from bgjobs.errors import PayloadError
from bgjobs.events import (
    Event,
    JobDiscarded,
    JobFailed,
    JobRescued,
    JobTimedOut,
    LivenessLost,
    MaintenanceError,
    NoLiveWorker,
    NoWorkerForJob,
    QueueError,
    ScheduleConflict,
    ScheduleRemoved,
    StoreError,
    SupervisorRestarted,
    WakeupLost,
    event_to_dict,
)
from bgjobs.job import Job

_ERRORS = (
    JobDiscarded,
    QueueError,
    StoreError,
    MaintenanceError,
    SupervisorRestarted,
    NoWorkerForJob,
)
_WARNINGS = (
    JobFailed,
    JobTimedOut,
    JobRescued,  # a rescue: a node died
    WakeupLost,
    LivenessLost,
    NoLiveWorker,
    ScheduleConflict,
    ScheduleRemoved,
)


def event_level(event: Event) -> str:
    """ERROR, WARN or INFO: how much an operator should care about this event."""
    if isinstance(event, _ERRORS):
        return "ERROR"
    if isinstance(event, _WARNINGS):
        return "WARN"
    return "INFO"


def utc_stamp(at: datetime) -> str:
    """2025-01-31T12:00:00.123Z"""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_line(event: Event) -> str:
    """``time level description``: the plain format of ``bgjobs run --no-live``."""
    return f"{utc_stamp(event.at)} {event_level(event):<5} {event.describe()}"


def event_json(event: Event) -> str:
    data = event_to_dict(event)
    data["level"] = event_level(event)
    return json.dumps(data, default=str, ensure_ascii=False)


class EventPrinter:
    """A listener that writes each event as one line (plain or JSON) and flushes it at once.
    Called from the runtime's threads, so writes are serialised by a lock.

    When the reader goes away (``bgjobs run --json | head -1``) there is nobody left to print
    for: the printer goes quiet and calls ``on_closed`` once (``bg.request_stop``, a drain)."""

    def __init__(
        self,
        *,
        as_json: bool,
        stream: IO[str] | None = None,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self._format = event_json if as_json else event_line
        self._stream = stream
        self._on_closed = on_closed
        self._closed = False
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = self._format(event)
        stream = self._stream or sys.stdout
        with self._lock:
            if self._closed:
                return
            try:
                stream.write(line + "\n")
                stream.flush()
            except BrokenPipeError:
                self._closed = True
                if stream is sys.stdout:
                    silence_stdout()
                if self._on_closed is not None:
                    self._on_closed()


def silence_stdout() -> None:
    """Point stdout at /dev/null after its reader left, so that nothing written later (nor
    the flush at exit) raises BrokenPipeError again (the recipe of Python's `signal` docs)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def job_to_dict(job: Job) -> dict[str, Any]:
    """A JSON-ready view of a job (``jobs list --json``, ``jobs show --json``)."""
    try:
        payload: Any = job.payload
    except PayloadError:
        payload = job.raw_payload  # a corrupt row still shows what is stored

    def stamp(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": job.id,
        "name": job.name,
        "queue": job.queue,
        "state": job.state.value,
        "priority": job.priority,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "payload": payload,
        "created_at": stamp(job.created_at),
        "available_at": stamp(job.available_at),
        "scheduled_at": stamp(job.scheduled_at),
        "reserved_by": job.reserved_by,
        "reserved_at": stamp(job.reserved_at),
        "lease_expires_at": stamp(job.lease_expires_at),
        "finished_at": stamp(job.finished_at),
        "cancel_requested_at": stamp(job.cancel_requested_at),
        "unique_key": job.unique_key,
        "schedule": job.schedule,
        "progress": None if job.progress is None else asdict(job.progress),
        "meta": dict(job.meta),
        "errors": [error.to_dict() for error in job.errors],
    }


def print_json(data: object) -> None:
    """Indented JSON; dataclasses become objects, datetimes ISO 8601 strings."""
    click.echo(json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False))


def _jsonable(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def one_line(text: str) -> str:
    """Database drivers like multi-line messages; an error here is one line."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


class CliError(click.ClickException):
    """An error shown as one red line on stderr; exit code 1."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    def show(self, file: IO[Any] | None = None) -> None:
        console = Console(file=file, stderr=file is None, highlight=False, soft_wrap=True)
        console.print(f"[bold red]error:[/] [red]{escape(self.format_message())}[/]")


class CliUsageError(CliError):
    """A bad argument found after parsing (a TARGET, a cron expression); exit code 2."""

    exit_code = 2
