"""Turning an enqueue request into a ``NewJob``: the one code path the library and the CLI share.

Routing (which queue serves a worker, how many attempts it gets) is decided by the caller: an
app by its own workers, `bgjobs enqueue` by what the live nodes publish (``queue_for``). Every
check on what the user typed lives here, so ``bg.enqueue`` and ``bgjobs enqueue`` can never
disagree about what is a valid job. The limits are the ones both stores can hold, checked up
front so that SQLite and Postgres refuse the same values with the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bgjobs.adapters.base import NodeInfo, describe_offers, queues_running
from bgjobs.builder import MAX_ATTEMPTS, _check_name
from bgjobs.errors import ConfigError, UnknownWorkerError
from bgjobs.job import NewJob
from bgjobs.payload import JSON, encode_payload
from bgjobs.unique import Unique, unique_request

# Postgres stores priority, attempt and max_attempts as `integer` (32-bit signed).
MIN_PRIORITY = -(2**31)
MAX_PRIORITY = 2**31 - 1
MAX_ATTEMPTS_LIMIT = MAX_ATTEMPTS
# When a job may be due. SQLite counts microseconds since the epoch; Python datetimes (and so
# every job read back) end at 9999-12-31, in any time zone, so the last year is kept clear.
EARLIEST_RUN_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_RUN_AT = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive


@dataclass(frozen=True)
class JobRequest:
    """One job for ``enqueue_many``."""

    name: str
    payload: JSON = None
    delay: timedelta | None = None
    at: datetime | None = None
    priority: int = 0
    unique: Unique | None = None


def build_new_job(request: JobRequest, *, queue: str, max_attempts: int) -> NewJob:
    """Validate ``request`` and encode its payload; raises ConfigError or PayloadError naming
    the problem, before anything is written."""
    _check_name("job", request.name)
    _check_name("queue", queue)
    _check_whole_number("max_attempts", max_attempts, 1, MAX_ATTEMPTS_LIMIT)
    _check_whole_number("priority", request.priority, MIN_PRIORITY, MAX_PRIORITY)
    if request.delay is not None and request.at is not None:
        raise ConfigError("give either delay= or at=, not both")
    if request.delay is not None:
        _check_delay(request.delay)
    new = NewJob(
        queue=queue,
        name=request.name,
        raw_payload=encode_payload(request.payload),
        max_attempts=max_attempts,
        priority=request.priority,
        available_at=_run_at(request.at) if request.at is not None else None,
        delay=request.delay or timedelta(0),
    )
    if request.unique is None:
        return new
    unique = unique_request(request.unique, request.name, request.payload)
    return replace(new, unique_key=unique.key, unique_hold=unique.hold, replace=unique.replace)


def queue_for(name: str, queue: str | None, nodes: Sequence[NodeInfo]) -> str:
    """The queue for a job named ``name`` when no app routes it: ``queue`` when given (checked as
    the builder checks queue names), else the one queue on which ``nodes`` (the live nodes) run
    that name. Raises UnknownWorkerError when none does and ConfigError when several do, each
    naming what the live nodes run."""
    _check_name("job", name)
    if queue is not None:
        _check_name("queue", queue)
        return queue
    serving = queues_running(nodes, name)
    if len(serving) == 1:
        return serving[0]
    if not serving:
        raise UnknownWorkerError(
            f"no live node has a worker named {name!r}; live nodes run: "
            f"{describe_offers(nodes)}. Start a node with that worker, or name the queue "
            "(--queue) to enqueue it anyway: it waits for a node that runs it"
        )
    raise ConfigError(
        f"{name!r} runs on several queues: {', '.join(serving)}; pick one with --queue"
    )


def _check_whole_number(what: str, value: object, lowest: int, highest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what} must be a whole number (int), got {value!r}")
    if not lowest <= value <= highest:
        raise ConfigError(
            f"{what} {value} is out of range: use a whole number from {lowest} to {highest}"
        )


def _wrong_type(what: str, value: object, kind: type, example: str) -> ConfigError:
    return ConfigError(
        f"{what} must be a {kind.__module__}.{kind.__name__}, got {value!r} "
        f"({type(value).__name__}); e.g. {example}"
    )


def _check_delay(delay: object) -> None:
    if not isinstance(delay, timedelta):
        raise _wrong_type("delay", delay, timedelta, "delay=timedelta(seconds=30)")
    if delay < timedelta(0):
        raise ConfigError(f"delay must not be negative, got {delay}")
    # The store adds the delay to its own clock; this one is within a second of it, and the
    # margin below LATEST_RUN_AT is a year.
    longest = LATEST_RUN_AT - datetime.now(UTC)
    if delay >= longest:
        raise ConfigError(
            f"delay={delay} would run the job after {LATEST_RUN_AT}, the latest time bgjobs "
            f"can store; give a shorter delay (under {longest.days} days)"
        )


def _run_at(at: object) -> datetime:
    if not isinstance(at, datetime):
        raise _wrong_type("at", at, datetime, "at=datetime.now(UTC) + timedelta(minutes=5)")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ConfigError(
            f"at={at!r} has no time zone; pass an aware datetime, "
            "e.g. datetime.now(UTC) + timedelta(minutes=5)"
        )
    # Compared as aware times, before astimezone(), which overflows at the ends of datetime.
    if not EARLIEST_RUN_AT <= at < LATEST_RUN_AT:
        raise ConfigError(
            f"at={at.isoformat()} is outside the times bgjobs can store: give a time from "
            f"{EARLIEST_RUN_AT} up to (not including) {LATEST_RUN_AT}"
        )
    return at.astimezone(UTC)
