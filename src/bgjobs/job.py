"""The job record as handlers and operators see it, and the request to create one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

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
WAITING_STATES = frozenset({JobState.AVAILABLE, JobState.SCHEDULED})

Conflict = Literal["kept", "replaced"]
"""How an enqueue that met a unique job ended: the earlier job kept as it was, or its payload or
run time replaced by the newer request."""


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
    cancel_requested_at: datetime | None = None  # someone asked to cancel it while it ran
    conflict: Conflict | None = field(default=None, compare=False)  # set on enqueue's duplicates
    _touch: Callable[[timedelta | None], None] | None = field(
        default=None, compare=False, repr=False
    )
    _cancel_flag: threading.Event | None = field(default=None, compare=False, repr=False)

    @property
    def payload(self) -> JSON:
        # A plain cache: functools.cached_property takes a lock shared by all Jobs on 3.11.
        try:
            return self.__dict__["_payload"]  # type: ignore[no-any-return]
        except KeyError:
            value = decode_payload(self.raw_payload)
            self.__dict__["_payload"] = value
            return value

    @property
    def duplicate(self) -> bool:
        """True when ``enqueue`` returned an earlier job holding the same unique key instead of
        inserting this one (``conflict`` says whether the earlier job was replaced)."""
        return self.conflict is not None

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this job while it runs (``bg.cancel``, ``bgjobs
        jobs cancel``). A handler that checks it can stop early; see ``check_cancelled``."""
        flag = self._cancel_flag
        return flag is not None and flag.is_set()

    def check_cancelled(self) -> None:
        """Raise ``Cancelled`` if this job was asked to stop: a clean exit point for loops."""
        if self.cancelled:
            raise Cancelled(f"job {self.id} was cancelled while running")

    def attach_touch(self, touch: Callable[[timedelta | None], None]) -> None:
        """Runtime use: bind ``touch()`` to the node running this job (no copy of the job)."""
        object.__setattr__(self, "_touch", touch)

    def attach_cancel_flag(self, flag: threading.Event) -> None:
        """Runtime use: the flag the node sets when this job is asked to stop."""
        object.__setattr__(self, "_cancel_flag", flag)

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


class Cancelled(Exception):
    """The job was cancelled while it ran. ``job.check_cancelled()`` raises it, the runtime raises
    it inside a sync handler that did not stop on its own, and a handler may raise it to end its
    job as cancelled. The job is archived as cancelled, with no further attempts."""


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"  # it was waiting: archived as cancelled now
    REQUESTED = "requested"  # it is running: its node stops it and archives it as cancelled
    FINISHED = "finished"  # it had already finished (``job.state`` says how): nothing changed
    NOT_FOUND = "not_found"  # no job has this id (never did, or deleted or pruned)


@dataclass(frozen=True)
class Cancellation:
    """What ``cancel`` did: ``outcome``, and the job as it is now (None when not found)."""

    outcome: CancelOutcome
    job: Job | None

    @property
    def stopped(self) -> bool:
        """Whether the job is cancelled now (it was waiting, or had already been cancelled)."""
        return self.job is not None and self.job.state is JobState.CANCELLED


@dataclass(frozen=True)
class UniqueHold:
    """How long a unique key stays taken once a job holds it. Stored with the key, so the job
    holding a key decides when it is free again.

    A waiting job always holds its key; a running one while ``while_running``; a finished one
    when its state is in ``after``, for ``period`` after it finished (None: as long as the
    finished job is kept in the archive).
    """

    while_running: bool = True
    after: frozenset[JobState] = frozenset()
    period: timedelta | None = None


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
    unique_hold: UniqueHold = UniqueHold()  # with unique_key: how long the key stays taken
    # With unique_key, when an earlier job holds the key and still waits: which of its fields
    # this request replaces ("payload", "run_at", "priority"). Empty: keep the earlier job.
    replace: frozenset[str] = frozenset()
