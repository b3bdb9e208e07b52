"""The job record as handlers and operators see it, and the request to create one."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from bgjobs.errors import ConfigError, PayloadError
from bgjobs.payload import JSON, decode_payload

MAX_PROGRESS_MESSAGE = 200  # characters: a status line, not a log
_NO_META: Mapping[str, str] = MappingProxyType({})


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
class Progress:
    """How far a running job got, as its handler last reported: ``fraction`` from 0 to 1 and a
    short ``message`` ("resized 4/10")."""

    fraction: float
    message: str = ""

    @classmethod
    def checked(cls, fraction: object, message: object = "") -> Progress:
        """A Progress from what a handler passed, or a ConfigError naming the problem."""
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ConfigError(
                f"progress must be a number from 0 to 1, got {fraction!r} "
                f"({type(fraction).__name__}); e.g. job.set_progress(done / total)"
            )
        if not (math.isfinite(fraction) and 0 <= fraction <= 1):
            raise ConfigError(
                f"progress must be from 0 to 1 (a fraction, not a percentage), got {fraction!r}"
            )
        if not isinstance(message, str):
            raise ConfigError(
                f"progress message must be a str, got {message!r} ({type(message).__name__})"
            )
        if any(ord(char) < 32 or ord(char) == 127 for char in message):
            raise ConfigError(
                f"progress message {message!r} has a line break or control character; "
                "give one line of plain text"
            )
        if len(message) > MAX_PROGRESS_MESSAGE:
            raise ConfigError(
                f"progress message is {len(message)} characters; keep it to "
                f"{MAX_PROGRESS_MESSAGE} (a status line such as 'resized 4/10')"
            )
        return cls(float(fraction), message)


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
    raw_meta: str | None = None  # JSON object of strings carried with the job (trace context)
    progress: Progress | None = None  # as stored when this record was read
    cancel_requested_at: datetime | None = None  # someone asked to cancel it while it ran
    conflict: Conflict | None = field(default=None, compare=False)  # set on enqueue's duplicates
    rescues: int = 0  # times its node died or lost its lease while running it
    _touch: Callable[[timedelta | None], None] | None = field(
        default=None, compare=False, repr=False
    )
    _report: Callable[[Progress], None] | None = field(default=None, compare=False, repr=False)
    _cancel_flag: threading.Event | None = field(default=None, compare=False, repr=False)

    @property
    def payload(self) -> JSON:
        # A plain cache: functools.cached_property takes a lock shared by all Jobs on 3.11.
        try:
            return self.__dict__["_payload"]  # type: ignore[no-any-return]
        except KeyError:
            try:
                value = decode_payload(self.raw_payload)
            except PayloadError as exc:  # name the job: the row may be found and mended by id
                raise PayloadError(f"job {self.id} ({self.name}): {exc}") from None
            self.__dict__["_payload"] = value
            return value

    @property
    def meta(self) -> Mapping[str, str]:
        """What integrations stored with the job at enqueue (e.g. W3C ``traceparent``)."""
        if self.raw_meta is None:
            return _NO_META
        try:
            return self.__dict__["_meta"]  # type: ignore[no-any-return]
        except KeyError:
            value = decode_meta(self.raw_meta)
            self.__dict__["_meta"] = value
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

    def attach_progress(self, report: Callable[[Progress], None]) -> None:
        """Runtime use: bind ``set_progress()`` to the node running this job."""
        object.__setattr__(self, "_report", report)

    def set_progress(self, fraction: float, message: str = "") -> None:
        """Report how far this job got: ``fraction`` from 0 to 1 and a short message.

        Cheap to call in a tight loop: the runtime stores at most one value per job per second,
        and the last one before the job's outcome. ``bg.get_job(id).progress`` reads it back.
        Raises ConfigError for a value out of range (fails the attempt like any exception)."""
        progress = Progress.checked(fraction, message)
        if self._report is not None:
            self._report(progress)

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


def encode_meta(meta: Mapping[str, str]) -> str | None:
    """Job metadata as stored: a JSON object of strings, or None when there is none."""
    return json.dumps(dict(meta), separators=(",", ":"), sort_keys=True) if meta else None


def decode_meta(text: str) -> Mapping[str, str]:
    """Stored metadata back; anything that is not an object of strings reads as empty (a damaged
    value must not make its job unreadable)."""
    try:
        value = json.loads(text)
    except ValueError:
        return _NO_META
    if not isinstance(value, dict):
        return _NO_META
    return MappingProxyType({str(k): str(v) for k, v in value.items() if isinstance(v, str)})


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
    raw_meta: str | None = None  # encode_meta(...): stored with the job; None stores nothing
    unique_hold: UniqueHold = UniqueHold()  # with unique_key: how long the key stays taken
    # With unique_key, when an earlier job holds the key and still waits: which of its fields
    # this request replaces ("payload", "run_at", "priority"). Empty: keep the earlier job.
    replace: frozenset[str] = frozenset()
