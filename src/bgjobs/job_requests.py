"""Turning an enqueue request into a ``NewJob``: the one code path the library and the CLI share.

Routing (which queue serves a worker, how many attempts it gets) is decided by the caller; every
check on what the user typed lives here, so ``bg.enqueue`` and ``bgjobs enqueue`` can never
disagree about what is a valid job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bgjobs.errors import ConfigError
from bgjobs.job import NewJob
from bgjobs.payload import JSON, encode_payload


@dataclass(frozen=True)
class JobRequest:
    """One job for ``enqueue_many``."""

    name: str
    payload: JSON = None
    delay: timedelta | None = None
    at: datetime | None = None
    priority: int = 0


def build_new_job(request: JobRequest, *, queue: str, max_attempts: int) -> NewJob:
    """Validate ``request`` and encode its payload; raises ConfigError naming the problem."""
    if request.delay is not None and request.at is not None:
        raise ConfigError("give either delay= or at=, not both")
    if request.at is not None and request.at.tzinfo is None:
        raise ConfigError(
            f"at={request.at!r} has no time zone; pass an aware datetime, "
            "e.g. datetime.now(UTC) + timedelta(minutes=5)"
        )
    if request.delay is not None and request.delay < timedelta(0):
        raise ConfigError(f"delay must not be negative, got {request.delay}")
    if not isinstance(request.priority, int):
        raise ConfigError(f"priority must be an int, got {request.priority!r}")
    return NewJob(
        queue=queue,
        name=request.name,
        raw_payload=encode_payload(request.payload),
        max_attempts=max_attempts,
        priority=request.priority,
        available_at=request.at.astimezone(UTC) if request.at else None,
        delay=request.delay or timedelta(0),
    )
