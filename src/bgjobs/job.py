"""The job record as handlers and operators see it, and the request to create one."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

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
    rescues: int = 0  # times its node died or lost its lease while running it
    _touch: Callable[[timedelta | None], None] | None = field(
        default=None, compare=False, repr=False
    )
    _report: Callable[[Progress], None] | None = field(default=None, compare=False, repr=False)

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
