"""The job record as handlers and operators see it, and the request to create one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bgjobs.payload import JSON, decode_payload


class JobState(StrEnum):
    AVAILABLE = "available"  # waiting in the hot table, due now
    SCHEDULED = "scheduled"  # waiting in the hot table, due in the future
    RUNNING = "running"  # reserved by a node
    SUCCEEDED = "succeeded"  # archived
    FAILED = "failed"  # archived: out of attempts
    DISCARDED = "discarded"  # archived: failed permanently on purpose (or poison input)
    CANCELLED = "cancelled"  # archived: cancelled by an operator

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.DISCARDED, JobState.CANCELLED}
)


@dataclass(frozen=True)
class JobError:
    """One failed attempt, kept in the job's error history."""

    at: datetime
    attempt: int
    type: str
    message: str
    traceback: str = ""

    def to_dict(self) -> dict[str, JSON]:
        return {
            "at": self.at.isoformat(),
            "attempt": self.attempt,
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
        }

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> JobError:
        return cls(
            at=datetime.fromisoformat(str(data["at"])),
            attempt=int(str(data["attempt"])),
            type=str(data["type"]),
            message=str(data["message"]),
            traceback=str(data.get("traceback") or ""),
        )


@dataclass(frozen=True)
class Job:
    """A persisted job. Handlers receive one; ``payload`` is decoded lazily so that a corrupt
    row fails only its own job, never the loop that claimed it."""

    id: int
    queue: str
    name: str
    raw_payload: str
    state: JobState
    priority: int
    attempt: int
    max_attempts: int
    available_at: datetime
    created_at: datetime
    scheduled_at: datetime
    reserved_by: str | None = None
    reserved_at: datetime | None = None
    lease_expires_at: datetime | None = None
    finished_at: datetime | None = None
    unique_key: str | None = None
    schedule: str | None = None
    errors: tuple[JobError, ...] = ()
    rescues: int = 0  # times its node died or lost its lease while running it
    _touch: Callable[[timedelta | None], None] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def payload(self) -> JSON:
        # A plain cache: functools.cached_property takes a lock shared by all Jobs on 3.11.
        try:
            return self.__dict__["_payload"]  # type: ignore[no-any-return]
        except KeyError:
            value = decode_payload(self.raw_payload)
            self.__dict__["_payload"] = value
            return value

    def attach_touch(self, touch: Callable[[timedelta | None], None]) -> None:
        """Runtime use: bind ``touch()`` to the node running this job (no copy of the job)."""
        object.__setattr__(self, "_touch", touch)

    def touch(self, extend: timedelta | None = None) -> None:
        """Tell the runtime this job is alive: push back its timeout and lease (Backy's touch)."""
        if self._touch is not None:
            self._touch(extend)

    def snooze(self, delay: timedelta) -> None:
        """Stop now and run again after `delay`, without spending an attempt."""
        raise Snooze(delay)

    def discard(self, reason: str) -> None:
        """Fail permanently now: no further attempts."""
        raise Discard(reason)


class Snooze(Exception):
    """Raise from a handler to run the job again after `delay` without using an attempt."""

    def __init__(self, delay: timedelta | float) -> None:
        self.delay = delay if isinstance(delay, timedelta) else timedelta(seconds=delay)
        super().__init__(f"snoozed for {self.delay}")


class Discard(Exception):
    """Raise from a handler to fail the job permanently, skipping any remaining attempts."""

    def __init__(self, reason: str = "discarded by handler") -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class NewJob:
    """A job to insert. ``available_at`` None means "now" by the database's clock plus ``delay``."""

    queue: str
    name: str
    raw_payload: str
    max_attempts: int
    priority: int = 0
    available_at: datetime | None = None
    delay: timedelta = timedelta(0)
    unique_key: str | None = None
    schedule: str | None = None
