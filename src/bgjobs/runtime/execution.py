"""Runs one handler and turns what happened into a Completion."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bgjobs.adapters.base import Completion, FollowUp, Outcome
from bgjobs.builder import QueueSpec, WorkerSpec
from bgjobs.errors import PayloadError
from bgjobs.job import Cancelled, Discard, Job, JobError, Snooze
from bgjobs.job_requests import EARLIEST_RUN_AT, LATEST_RUN_AT
from bgjobs.payload import without_lone_surrogates
from bgjobs.retry import Backoff
from bgjobs.runtime.progress import ProgressSlot


class JobTimeout(Exception):
    """Raised inside a handler that ran past its worker's timeout."""


class NextRunError(Exception):
    """The run that follows a scheduled run could not be computed."""


@dataclass
class RunningJob:
    """A claimed job while it is in a handler. Exactly one party (the handler's return or the
    timeout watchdog) gets to finish it."""

    job: Job
    worker: WorkerSpec | None
    started: float  # the runtime clock's monotonic()
    deadline: float | None = None
    thread_id: int | None = None
    cancel: Callable[[], None] | None = None  # async handlers: cancel the coroutine
    progress: ProgressSlot | None = None  # made on the handler's first report
    # Set when someone cancels the job while it runs (``job.cancelled`` reads it).
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    _finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def progress_due(self) -> float | None:
        """When this job's unwritten progress may be written (None: nothing waits)."""
        return None if self.progress is None else self.progress.due_at()

    def take_finish(self) -> bool:
        with self.lock:
            if self._finished:
                return False
            self._finished = True
            return True


def describe_error(exc: BaseException, attempt: int, at: datetime) -> JobError:
    # A handler's text may hold lone surrogates, which neither store can hold: the outcome must
    # be written whatever the exception says.
    return JobError(
        at=at,
        attempt=attempt,
        type=type(exc).__name__,
        message=without_lone_surrogates(str(exc) or repr(exc)),
        traceback=without_lone_surrogates("".join(traceback.format_exception(exc))),
    )


@dataclass(frozen=True)
class Policy:
    """What the runtime needs to decide a job's fate after its handler."""

    node_id: str
    backoff: Backoff
    keep_succeeded: bool
    follow_up: Callable[[Job], FollowUp]  # scheduled jobs: the next run and the history
    gate: Callable[[Job], Completion | None]  # scheduled jobs: None when the run may start
    now: Callable[[], datetime]


def backoff_for(worker: WorkerSpec | None, queue: QueueSpec) -> Backoff:
    return worker.backoff if worker is not None and worker.backoff is not None else queue.backoff


def failure(job: Job, policy: Policy, error: JobError, *, discard: bool = False) -> Completion:
    if discard or job.attempt >= job.max_attempts:
        outcome = Outcome.DISCARDED if discard else Outcome.FAILED
        follow = follow_up(job, policy)
        return Completion(
            job=job,
            node_id=policy.node_id,
            outcome=outcome,
            error=error,
            next_run=follow.next_run,
            history=follow.history,
        )
    delay = policy.backoff.delay(job.attempt)
    problem = unstorable(delay, policy.now())
    if problem is not None:
        # The retry cannot be written: fail for good, saying why, rather than lose the outcome.
        unretryable = JobError(
            at=error.at,
            attempt=error.attempt,
            type="UnstorableDelay",
            message=f"{error.type}: {error.message}; and its retry cannot be scheduled: the "
            f"backoff's delay of {problem}. Give the worker's or queue's backoff a shorter "
            "delay (or cap)",
            traceback=error.traceback,
        )
        return failure(job, policy, unretryable, discard=True)
    return Completion(
        job=job, node_id=policy.node_id, outcome=Outcome.RETRY, error=error, delay=delay
    )


def unstorable(delay: timedelta, now: datetime) -> str | None:
    """Why a job due ``delay`` from ``now`` cannot be stored (a phrase), or None if it can."""
    try:
        due: datetime | None = now + delay
    except OverflowError:
        due = None
    if due is not None and EARLIEST_RUN_AT <= due < LATEST_RUN_AT:
        return None
    if delay >= timedelta(0):
        room = (LATEST_RUN_AT - now).days
        return (
            f"{delay} would run the job after {LATEST_RUN_AT}, the latest time bgjobs can "
            f"store (keep it under {room} days)"
        )
    return f"{delay} would run the job before {EARLIEST_RUN_AT}, the earliest time bgjobs can store"


def success(job: Job, policy: Policy) -> Completion:
    follow = follow_up(job, policy)
    return Completion(
        job=job,
        node_id=policy.node_id,
        outcome=Outcome.SUCCEEDED,
        keep=policy.keep_succeeded,
        next_run=follow.next_run,
        history=follow.history,
    )


def follow_up(job: Job, policy: Policy) -> FollowUp:
    try:
        return policy.follow_up(job)
    except Exception as exc:
        raise NextRunError(
            f"computing the next run of schedule {job.schedule!r} after the run due at "
            f"{job.scheduled_at.isoformat()} failed: {exc!r}"
        ) from exc


def snoozed(job: Job, policy: Policy, delay: timedelta) -> Completion:
    at = policy.now()
    problem = unstorable(delay, at)
    if problem is not None:  # fail this attempt, saying why, instead of an unwritable outcome
        error = JobError(
            at=at,
            attempt=job.attempt,
            type="UnstorableDelay",
            message=f"snooze of {problem}; snooze for less",
        )
        return failure(job, policy, error)
    return Completion(job=job, node_id=policy.node_id, outcome=Outcome.SNOOZED, delay=delay)


def cancelled(job: Job, policy: Policy, why: str) -> Completion:
    """Archive as cancelled (a scheduled job's next run still follows), ``why`` in its errors."""
    error = JobError(at=policy.now(), attempt=job.attempt, type="Cancelled", message=why)
    follow = policy.follow_up(job)
    return Completion(
        job=job,
        node_id=policy.node_id,
        outcome=Outcome.CANCELLED,
        error=error,
        next_run=follow.next_run,
        history=follow.history,
    )


def cancel_reason(job: Job) -> str:
    return f"cancelled while running (attempt {job.attempt})"


def not_finishable(
    job: Job, node_id: str, at: datetime, exc: BaseException, doing: str
) -> Completion:
    """bgjobs itself failed to ``doing`` (not the handler: its errors are outcomes): discard the
    job with an error naming the problem, so it never stays reserved for ever."""
    error = JobError(
        at=at,
        attempt=job.attempt,
        type=type(exc).__name__,
        message=f"bgjobs could not {doing} for {job.name}#{job.id}: {type(exc).__name__}: "
        f"{exc}; the job was discarded. Fix the cause, then `bgjobs jobs retry {job.id}`",
        traceback=_traceback(exc),
    )
    return Completion(job=job, node_id=node_id, outcome=Outcome.DISCARDED, error=error)


def _traceback(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # formatting can fail too (e.g. on a RecursionError's depth)
        return ""


def precheck(running: RunningJob, policy: Policy, known: Callable[[], str]) -> Completion | None:
    """Poison input fails its job permanently instead of crashing or looping. A job whose cancel
    was requested before this node got it (released or rescued since) is not run. A scheduled
    run then passes its schedule's gate (paused? another run going? defined on this node?): it
    is never discarded for a worker this node lacks."""
    job = running.job
    if job.cancel_requested_at is not None:
        return cancelled(job, policy, "cancelled before this attempt started")
    if job.schedule is not None and (held := policy.gate(job)) is not None:
        return held
    if running.worker is None:
        error = JobError(
            at=policy.now(),
            attempt=job.attempt,
            type="UnknownWorker",
            message=f"no worker named {job.name!r} is registered in this deployment "
            f"(queue {job.queue!r} knows: {known()})",
        )
        return failure(job, policy, error, discard=True)
    try:
        _ = job.payload
    except PayloadError as exc:
        return failure(job, policy, describe_error(exc, job.attempt, policy.now()), discard=True)
    return None


def outcome_of(
    job: Job, policy: Policy, exc: BaseException | None, *, cancel_requested: bool = False
) -> Completion:
    """Map a handler's return (exc None) or exception to a Completion. A job cancelled while it
    ran ends cancelled however its handler ended."""
    if cancel_requested:
        return cancelled(job, policy, cancel_reason(job))
    if isinstance(exc, Cancelled):
        return cancelled(job, policy, str(exc) or "cancelled by its handler")
    if exc is None:
        return success(job, policy)
    if isinstance(exc, Snooze):
        return snoozed(job, policy, exc.delay)
    error = describe_error(exc, job.attempt, policy.now())
    return failure(job, policy, error, discard=isinstance(exc, Discard))
