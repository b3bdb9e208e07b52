"""Immutable, chainable specs for workers, queues, scheduled jobs and the runtime.

Every ``with_*`` method returns a new spec. ``RuntimeSpec`` is the whole tree and its validation;
``bgjobs.BgJobsSpec`` (in ``runtime/app.py``, next to the ``BgJobs`` it builds) adds ``build()``,
which validates the tree and returns a runtime that has not touched the database yet.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self, TypeVar

from bgjobs.adapters.base import Store
from bgjobs.errors import ConfigError
from bgjobs.events import Listener
from bgjobs.instrumentation import Instrumentation
from bgjobs.job import Job
from bgjobs.retry import Backoff, ExponentialBackoff
from bgjobs.schedules import with_hash_id

if TYPE_CHECKING:
    from bgjobs.schedules import Schedule

Handler = Callable[[Job], Any] | Callable[[Job], Awaitable[Any]]

DEFAULT_MAX_ATTEMPTS = 10
# Bounds, checked by build(). Each slot of a queue is a worker thread started with the runtime.
MAX_CONCURRENT_JOBS = 1000
# Both stores keep attempts in a 32-bit signed integer.
MAX_ATTEMPTS = 2**31 - 1
# Poll intervals, timeouts, heartbeats, the grace: anything longer is a mistake (and past
# threading's own limit a wait would fail deep in the runtime).
MAX_DURATION = timedelta(days=365)
DEFAULT_BACKOFF = ExponentialBackoff(base=timedelta(seconds=2), cap=timedelta(hours=1))
SCHEDULED_LANE = "scheduled"
_NAME = re.compile(r"\A[A-Za-z0-9_.:\-/]{1,200}\Z")  # \Z: "$" would let a final newline in


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{kind} name {name!r} is invalid: use 1-200 letters, digits or _ . : - /"
        )


def _positive(what: str, value: timedelta | None) -> None:
    if value is None:
        return
    if value <= timedelta(0):
        raise ConfigError(f"{what} must be positive, got {value}")
    if value > MAX_DURATION:
        raise ConfigError(f"{what} must be at most {MAX_DURATION.days} days, got {value}")


def _at_least_one(what: str, value: int | None, most: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a whole number >= 1, got {value!r}")
    if most is not None and value > most:
        raise ConfigError(f"{what} must be at most {most:,}, got {value:,}")


@dataclass(frozen=True)
class WorkerSpec:
    """A job name and the handler that runs it, plus per-worker overrides."""

    name: str
    handler: Handler
    listeners: tuple[Listener, ...] = ()
    max_attempts: int | None = None
    backoff: Backoff | None = None
    timeout: timedelta | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler) or inspect.iscoroutinefunction(
            getattr(self.handler, "__call__", None)  # noqa: B004 - async callable objects
        )

    def with_event_listener(self, listener: Listener) -> WorkerSpec:
        return replace(self, listeners=(*self.listeners, listener))

    def with_max_attempts(self, attempts: int) -> WorkerSpec:
        return replace(self, max_attempts=attempts)

    def with_max_retries(self, retries: int) -> WorkerSpec:
        return replace(self, max_attempts=retries + 1)

    def with_backoff(self, backoff: Backoff) -> WorkerSpec:
        return replace(self, backoff=backoff)

    def with_timeout(self, timeout: timedelta | float) -> WorkerSpec:
        return replace(self, timeout=_duration(timeout))

    def validate(self) -> None:
        _check_name("worker", self.name)
        if not callable(self.handler):
            raise ConfigError(f"worker {self.name!r}: handler {self.handler!r} is not callable")
        _at_least_one(f"worker {self.name!r} max_attempts", self.max_attempts, MAX_ATTEMPTS)
        _positive(f"worker {self.name!r} timeout", self.timeout)


def worker(name: str, handler: Handler) -> WorkerSpec:
    """A worker handles every job enqueued under ``name``."""
    return WorkerSpec(name=name, handler=handler)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    workers: tuple[WorkerSpec, ...] = ()
    max_concurrent_jobs: int = 10
    poll_interval: timedelta = timedelta(milliseconds=100)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: Backoff = DEFAULT_BACKOFF
    blocking: bool = False
    listeners: tuple[Listener, ...] = ()

    def with_worker(self, spec: WorkerSpec) -> QueueSpec:
        return replace(self, workers=(*self.workers, spec))

    def with_workers(self, specs: list[WorkerSpec] | tuple[WorkerSpec, ...]) -> QueueSpec:
        return replace(self, workers=(*self.workers, *specs))

    def with_max_concurrent_jobs(self, limit: int) -> QueueSpec:
        return replace(self, max_concurrent_jobs=limit)

    def with_poll_interval(self, interval: timedelta | float) -> QueueSpec:
        return replace(self, poll_interval=_duration(interval))

    def with_max_attempts(self, attempts: int) -> QueueSpec:
        return replace(self, max_attempts=attempts)

    def with_max_retries(self, retries: int) -> QueueSpec:
        return replace(self, max_attempts=retries + 1)

    def with_backoff(self, backoff: Backoff) -> QueueSpec:
        return replace(self, backoff=backoff)

    def with_blocking(self, blocking: bool = True) -> QueueSpec:
        """Strict FIFO, one job at a time across all nodes; a failing head blocks the queue."""
        return replace(self, blocking=blocking)

    def with_event_listener(self, listener: Listener) -> QueueSpec:
        return replace(self, listeners=(*self.listeners, listener))

    def validate(self, *, needs_workers: bool = True) -> None:
        _check_name("queue", self.name)
        if needs_workers and not self.workers:
            raise ConfigError(
                f"queue {self.name!r} has no workers and no scheduled job runs on it; add one "
                "with .with_worker(bgjobs.worker(name, handler))"
            )
        _at_least_one(
            f"queue {self.name!r} max_concurrent_jobs",
            self.max_concurrent_jobs,
            MAX_CONCURRENT_JOBS,
        )
        _at_least_one(f"queue {self.name!r} max_attempts", self.max_attempts, MAX_ATTEMPTS)
        _positive(f"queue {self.name!r} poll_interval", self.poll_interval)
        for spec in self.workers:
            spec.validate()


def queue(name: str) -> QueueSpec:
    return QueueSpec(name=name)


class MissedRuns(StrEnum):
    COALESCE = "coalesce"  # run once for all occurrences missed while down
    SKIP = "skip"  # drop missed occurrences; wait for the next future one


class Overlap(StrEnum):
    """What happens to an occurrence that comes due while the schedule's previous run is still
    going (a run never overlaps another run of its schedule)."""

    SKIP = "skip"  # skip it (recorded as skipped_overlap); the next run is the next occurrence
    QUEUE = "queue"  # run it as soon as the previous run ends (several collapse into one)


@dataclass(frozen=True)
class ScheduledJobSpec:
    worker: WorkerSpec
    schedule: Schedule
    queue: str | None = None  # None: the dedicated "scheduled" lane
    missed: MissedRuns = MissedRuns.COALESCE
    max_attempts: int = 1  # the next occurrence is the natural retry
    overlap: Overlap | None = None  # None: follow ``missed`` (coalesce -> queue, skip -> skip)

    @property
    def name(self) -> str:
        return self.worker.name

    @property
    def overlap_policy(self) -> Overlap:
        """The overlap choice in force: the one given, else the missed-run policy's match."""
        if self.overlap is not None:
            return self.overlap
        return Overlap.QUEUE if self.missed is MissedRuns.COALESCE else Overlap.SKIP

    def with_event_listener(self, listener: Listener) -> ScheduledJobSpec:
        return replace(self, worker=self.worker.with_event_listener(listener))

    def with_queue(self, name: str) -> ScheduledJobSpec:
        return replace(self, queue=name)

    def with_missed_runs(self, policy: MissedRuns | str) -> ScheduledJobSpec:
        return replace(self, missed=_choice(MissedRuns, policy, "with_missed_runs"))

    def with_overlap(self, policy: Overlap | str) -> ScheduledJobSpec:
        """``"skip"`` or ``"queue"``: an occurrence due while the previous run still goes."""
        return replace(self, overlap=_choice(Overlap, policy, "with_overlap"))

    def with_max_attempts(self, attempts: int) -> ScheduledJobSpec:
        return replace(self, max_attempts=attempts)

    def with_max_retries(self, retries: int) -> ScheduledJobSpec:
        return replace(self, max_attempts=retries + 1)

    def validate(self) -> None:
        self.worker.validate()
        _at_least_one(f"scheduled job {self.name!r} max_attempts", self.max_attempts, MAX_ATTEMPTS)
        # Computing one fire time proves the schedule can fire at all.
        self.schedule.next_after(datetime.now(UTC))


def scheduled_job(worker: WorkerSpec, schedule: Schedule) -> ScheduledJobSpec:
    # A cron's 'H' fields hash the job's name: a stable time of its own per job.
    return ScheduledJobSpec(worker=worker, schedule=with_hash_id(schedule, worker.name))


@dataclass(frozen=True)
class Retention:
    """How long finished jobs stay in the archive. None keeps them until someone acts;
    ``succeeded=timedelta(0)`` deletes jobs as they succeed."""

    succeeded: timedelta | None = timedelta(days=1)
    failed: timedelta | None = None


@dataclass(frozen=True)
class RuntimeSpec:
    """The whole runtime described: its store, queues, scheduled jobs, listeners and tuning."""

    store: Store
    queues: tuple[QueueSpec, ...] = ()
    scheduled_jobs: tuple[ScheduledJobSpec, ...] = ()
    listeners: tuple[Listener, ...] = ()
    max_restarts: int = 10
    restart_period: timedelta = timedelta(seconds=60)
    heartbeat_interval: timedelta = timedelta(seconds=5)
    node_timeout: timedelta = timedelta(seconds=30)
    shutdown_grace: timedelta = timedelta(seconds=30)
    unknown_worker_timeout: timedelta = timedelta(minutes=10)
    retention: Retention = field(default_factory=Retention)
    scheduled_lane: QueueSpec = field(default_factory=lambda: QueueSpec(name=SCHEDULED_LANE))
    instrumentations: tuple[Instrumentation, ...] = ()

    def with_queue(self, spec: QueueSpec) -> Self:
        return replace(self, queues=(*self.queues, spec))

    def with_scheduled_job(self, spec: ScheduledJobSpec) -> Self:
        return replace(self, scheduled_jobs=(*self.scheduled_jobs, spec))

    def with_event_listener(self, listener: Listener) -> Self:
        return replace(self, listeners=(*self.listeners, listener))

    def with_supervisor(self, max_restarts: int, period: timedelta | float) -> Self:
        """Allow at most ``max_restarts`` crashes of runtime loops within ``period``."""
        return replace(self, max_restarts=max_restarts, restart_period=_duration(period))

    def with_heartbeat(self, interval: timedelta | float, node_timeout: timedelta | float) -> Self:
        return replace(
            self, heartbeat_interval=_duration(interval), node_timeout=_duration(node_timeout)
        )

    def with_shutdown_grace(self, grace: timedelta | float) -> Self:
        return replace(self, shutdown_grace=_duration(grace))

    def with_unknown_worker_timeout(self, timeout: timedelta | float) -> Self:
        """How long due jobs wait for a worker that no live node has (a rolling deploy) before
        they are discarded with an error naming it; default 10 minutes."""
        return replace(self, unknown_worker_timeout=_duration(timeout))

    def with_retention(
        self,
        *,
        succeeded: timedelta | None = timedelta(days=1),
        failed: timedelta | None = None,
    ) -> Self:
        return replace(self, retention=Retention(succeeded=succeeded, failed=failed))

    def with_instrumentation(self, instrumentation: Instrumentation) -> Self:
        """Wrap every enqueue and every run (``bgjobs.instrumentation``); integrations such as
        ``bgjobs.integrations.otel.instrument(spec)`` call this for you."""
        return replace(self, instrumentations=(*self.instrumentations, instrumentation))

    def with_scheduled_lane(self, spec: QueueSpec) -> Self:
        """Tune the dedicated queue that runs scheduled jobs (its name, concurrency, polling)."""
        return replace(self, scheduled_lane=spec)

    def validate(self) -> None:
        if not self.queues and not self.scheduled_jobs:
            raise ConfigError(
                "nothing to run: add a queue with .with_queue(...) "
                "or a scheduled job with .with_scheduled_job(...)"
            )
        _at_least_one("max_restarts", self.max_restarts)
        _positive("restart_period", self.restart_period)
        _positive("heartbeat_interval", self.heartbeat_interval)
        _positive("node_timeout", self.node_timeout)
        _positive("shutdown_grace", self.shutdown_grace)
        _positive("unknown_worker_timeout", self.unknown_worker_timeout)
        if self.node_timeout <= self.heartbeat_interval * 2:
            raise ConfigError(
                f"node_timeout ({self.node_timeout}) must be more than twice the heartbeat "
                f"interval ({self.heartbeat_interval}) or live nodes would be rescued"
            )
        seen_queues: set[str] = set()
        scheduled_targets = {s.queue for s in self.scheduled_jobs}
        for spec in self.queues:
            if spec.name in seen_queues:
                raise ConfigError(
                    f"queue {spec.name!r} is defined twice; give each queue one "
                    "definition and add all its workers to it"
                )
            seen_queues.add(spec.name)
            spec.validate(needs_workers=spec.name not in scheduled_targets)
        owners: dict[str, str] = {}
        for spec in self.queues:
            for w in spec.workers:
                _claim_name(owners, w.name, f"queue {spec.name!r}")
        for scheduled in self.scheduled_jobs:
            scheduled.validate()
            _claim_name(owners, scheduled.name, "a scheduled job")
            if scheduled.queue is not None and scheduled.queue not in seen_queues:
                raise ConfigError(
                    f"scheduled job {scheduled.name!r} names queue {scheduled.queue!r}, which is "
                    "not defined; add that queue, or leave the queue unset to use the dedicated "
                    f"{self.scheduled_lane.name!r} lane"
                )
        if self.scheduled_jobs and any(s.queue is None for s in self.scheduled_jobs):
            if self.scheduled_lane.name in seen_queues:
                raise ConfigError(
                    f"queue name {self.scheduled_lane.name!r} is reserved for scheduled jobs; "
                    "rename your queue or the lane (.with_scheduled_lane(bgjobs.queue(...)))"
                )
            self.scheduled_lane.validate(needs_workers=False)


def _claim_name(owners: dict[str, str], name: str, owner: str) -> None:
    if name in owners:
        raise ConfigError(
            f"worker {name!r} is registered twice ({owners[name]} and {owner}); "
            "a job name must map to exactly one worker"
        )
    owners[name] = owner


_Choice = TypeVar("_Choice", bound=StrEnum)


def _choice(kind: type[_Choice], value: _Choice | str, method: str) -> _Choice:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise ConfigError(f"{method}({value!r}): choose one of {allowed}") from None


def _duration(value: timedelta | float) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        with contextlib.suppress(OverflowError):
            return timedelta(seconds=value)
    raise ConfigError(
        f"a duration must be a timedelta or a finite number of seconds "
        f"(at most {MAX_DURATION.days} days), got {value!r}"
    )
