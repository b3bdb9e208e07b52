"""Typed lifecycle events, one frozen dataclass per transition, and their dispatch.

Listeners attach at three scopes (global, queue, worker/scheduled job); every listener whose scope
matches gets the event, so narrower scopes add to the global ones and never replace them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from bgjobs.job import Job, JobError

log = logging.getLogger("bgjobs")


@dataclass(frozen=True, kw_only=True)
class Event:
    at: datetime

    @property
    def kind(self) -> str:
        return type(self).__name__

    def describe(self) -> str:
        """One human line, used by the logging listener and the CLI's plain output. By default
        the kind and every field but ``at`` as ``name=value``, so a new event reads well in the
        log and the live view without code of its own."""
        return " ".join((self.kind, *_field_texts(self, skip=("at",))))


@dataclass(frozen=True, kw_only=True)
class JobEvent(Event):
    job: Job

    def describe(self) -> str:
        return " ".join((self._job_line(), *_field_texts(self, skip=("at", "job"))))

    def _job_line(self) -> str:
        job = self.job
        return f"{self.kind} {job.name}#{job.id} queue={job.queue} attempt={job.attempt}"


_IN_TRANSACTION = " (in the caller's transaction, not committed yet)"


@dataclass(frozen=True, kw_only=True)
class JobEnqueued(JobEvent):
    """A job was inserted. ``in_transaction``: written in the caller's transaction
    (``enqueue(conn=...)``), so it exists only if the caller commits."""

    in_transaction: bool = False

    def describe(self) -> str:
        return super().describe() + (_IN_TRANSACTION if self.in_transaction else "")


@dataclass(frozen=True, kw_only=True)
class JobDeduplicated(JobEvent):
    """An enqueue met an earlier job holding its unique key (``job``, that earlier job): it was
    kept as it is, or, when ``replaced``, its payload or run time were replaced."""

    replaced: bool
    in_transaction: bool = False

    def describe(self) -> str:
        action = "replaced" if self.replaced else "kept"
        extra = _IN_TRANSACTION if self.in_transaction else ""
        return f"{super().describe()} key={self.job.unique_key} {action}{extra}"


@dataclass(frozen=True, kw_only=True)
class JobReserved(JobEvent):
    node_id: str

    def describe(self) -> str:
        return self._job_line()  # the node is the one emitting it


@dataclass(frozen=True, kw_only=True)
class JobStarted(JobEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class JobSucceeded(JobEvent):
    duration: timedelta

    def describe(self) -> str:
        return f"{self._job_line()} in {self.duration.total_seconds() * 1000:.1f}ms"


@dataclass(frozen=True, kw_only=True)
class JobFailed(JobEvent):
    """An attempt failed and the job will run again at ``retry_at``."""

    error: JobError
    retry_at: datetime

    def describe(self) -> str:
        retry = f"{self.retry_at:%H:%M:%S}"
        return f"{self._job_line()} {self.error.type}: {self.error.message} (retry at {retry})"


@dataclass(frozen=True, kw_only=True)
class JobDiscarded(JobEvent):
    """The job failed for good: out of attempts, discarded by its handler, or poison input."""

    error: JobError

    def describe(self) -> str:
        return f"{self._job_line()} {self.error.type}: {self.error.message}"


@dataclass(frozen=True, kw_only=True)
class JobTimedOut(JobEvent):
    timeout: timedelta


@dataclass(frozen=True, kw_only=True)
class JobSnoozed(JobEvent):
    until: datetime


@dataclass(frozen=True, kw_only=True)
class JobCancelled(JobEvent):
    """The job ended as cancelled. ``node_id``: the node that stopped it while it ran (emitted
    there, whoever asked); None when it was waiting (emitted by the ``BgJobs`` whose ``cancel``
    archived it). ``in_transaction`` as for JobEnqueued."""

    node_id: str | None = None
    in_transaction: bool = False

    def describe(self) -> str:
        where = f" on node {self.node_id}" if self.node_id else ""
        return super().describe() + where + (_IN_TRANSACTION if self.in_transaction else "")


@dataclass(frozen=True, kw_only=True)
class JobRescued(JobEvent):
    """A job whose node died (its liveness lock was released) or whose lease ran out was put
    back to run again; ``reason`` says which, and whether it counts as an attempt."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class JobReleased(JobEvent):
    """Shutdown gave a running job back to the queue unfinished; its attempt is not counted."""


@dataclass(frozen=True, kw_only=True)
class JobProgress(JobEvent):
    """A running job's handler reported progress and it was recorded (at most once a second per
    job, plus its last report before the outcome); ``bg.get_job(id).progress`` reads it back."""

    fraction: float
    message: str

    def describe(self) -> str:
        return f"{self._job_line()} {self.fraction:.0%} {self.message}".rstrip()


@dataclass(frozen=True, kw_only=True)
class NoWorkerForJob(Event):
    name: str
    known: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.kind} {self.name!r} (known: {', '.join(self.known) or 'none'})"


@dataclass(frozen=True, kw_only=True)
class NoLiveWorker(Event):
    """Due jobs named ``name`` wait on ``queue`` because no live node has a worker for them there
    (nodes claim only what they can run). Sent once per (queue, name) by each node serving the
    queue; they discard the jobs once the worker has been missing for ``discard_after``."""

    queue: str
    name: str
    waiting: int
    offered: str  # what the live nodes run: "work: a, b; scheduled: tick"
    discard_after: timedelta

    def describe(self) -> str:
        return (
            f"{self.kind} {self.name!r} on queue {self.queue}: {self.waiting} due job(s) wait; "
            f"live nodes run {self.offered}; discarded after {self.discard_after} unless a node "
            "with that worker starts"
        )


@dataclass(frozen=True, kw_only=True)
class ScheduleConflict(Event):
    """Live nodes define scheduled job ``schedule`` differently. The newest node's definition
    (``winner``) is the one that runs; nodes with another definition stop registering and
    claiming that schedule while the newer node lives (see docs/scheduling.md)."""

    schedule: str
    definitions: tuple[tuple[str, str], ...]  # (node id, definition), by node id
    winner: str

    def describe(self) -> str:
        defined = "; ".join(f"{node}: {definition}" for node, definition in self.definitions)
        return (
            f"{self.kind} {self.schedule}: live nodes define it differently ({defined}); "
            f"the newest node's definition runs: {self.winner}"
        )


@dataclass(frozen=True, kw_only=True)
class ScheduledNextRun(Event):
    schedule: str
    job: Job
    run_at: datetime

    def describe(self) -> str:
        return f"{self.kind} {self.schedule} at {self.run_at.isoformat()}"


@dataclass(frozen=True, kw_only=True)
class ScheduledRunSkipped(JobEvent):
    """A claimed scheduled run did not start its handler: ``reason`` is ``skipped_paused`` (the
    schedule is paused) or ``skipped_overlap`` (another run of it was still going). The due
    time is in the schedule's history."""

    reason: str

    def describe(self) -> str:
        job = self.job
        return (
            f"{self.kind} {job.schedule or job.name}#{job.id} due "
            f"{job.scheduled_at.isoformat()} ({self.reason})"
        )


@dataclass(frozen=True, kw_only=True)
class SchedulePaused(Event):
    """``bg.pause_schedule`` paused a schedule (until ``until``, or until resumed)."""

    schedule: str
    until: datetime | None

    def describe(self) -> str:
        until = self.until.isoformat() if self.until else "resumed"
        return f"{self.kind} {self.schedule} until {until}"


@dataclass(frozen=True, kw_only=True)
class ScheduleResumed(Event):
    schedule: str

    def describe(self) -> str:
        return f"{self.kind} {self.schedule}"


@dataclass(frozen=True, kw_only=True)
class ScheduleRemoved(Event):
    """No live node defines the schedule any more: its waiting runs (``runs``) were deleted."""

    schedule: str
    runs: tuple[Job, ...]

    def describe(self) -> str:
        return f"{self.kind} {self.schedule} ({len(self.runs)} waiting run(s) removed)"


@dataclass(frozen=True, kw_only=True)
class QueueEvent(Event):
    queue: str

    def describe(self) -> str:
        return f"{self.kind} queue={self.queue}"


@dataclass(frozen=True, kw_only=True)
class QueuePollingStarted(QueueEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class QueuePollingStopped(QueueEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class QueueError(QueueEvent):
    """A queue's loop hit an error (often the database); it backs off and carries on."""

    error: str

    def describe(self) -> str:
        return f"{super().describe()} {self.error}"


@dataclass(frozen=True, kw_only=True)
class StoreError(Event):
    """A store call failed (``operation`` is the Store method: ``claim``, ``complete``, ...).

    Every store call the runtime makes reports its failure here, once; the caller then does what
    it always does (a queue backs off, the completer keeps the batch and retries, ``enqueue``
    raises), and a loop reports that in its own event (``QueueError``, ``MaintenanceError``)."""

    operation: str
    error: str

    def describe(self) -> str:
        return f"{self.kind} {self.operation}: {self.error}"


@dataclass(frozen=True, kw_only=True)
class MaintenanceError(Event):
    """A maintenance step (``heartbeat``, ``rescue``, ``peers``: what the live nodes run,
    ``liveness``: the peers' liveness locks, ``suspects``, ``prune``, ``schedules``) failed; the
    rest of that round is skipped and the next round tries again. ``upkeep`` (the store's own
    housekeeping, e.g. a vacuum) runs on its own loop and is tried again a few seconds later."""

    task: str
    error: str

    def describe(self) -> str:
        return f"{self.kind} {self.task}: {self.error}"


@dataclass(frozen=True, kw_only=True)
class SupervisorRestarted(Event):
    component: str
    error: str
    restarts: int

    def describe(self) -> str:
        return f"{self.kind} {self.component} after {self.error} (restart {self.restarts})"


@dataclass(frozen=True, kw_only=True)
class RuntimeEvent(Event):
    node_id: str

    def describe(self) -> str:
        return f"{self.kind} node={self.node_id}"


@dataclass(frozen=True, kw_only=True)
class RuntimeStarted(RuntimeEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class RuntimeStopping(RuntimeEvent):
    reason: str


@dataclass(frozen=True, kw_only=True)
class RuntimeStopped(RuntimeEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class Migrated(Event):
    backend: str
    from_version: int
    to_version: int

    def describe(self) -> str:
        return f"{self.kind} {self.backend} schema {self.from_version} -> {self.to_version}"


@dataclass(frozen=True, kw_only=True)
class WakeupLost(Event):
    """The instant wake-up channel (Postgres LISTEN) dropped; polling covers until it is back."""

    error: str


@dataclass(frozen=True, kw_only=True)
class WakeupRestored(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class NodeDied(Event):
    """A peer's liveness lock was found free: its process is gone. Its jobs were rescued at once
    (a JobRescued or JobDiscarded each) and it was removed from the node registry."""

    node_id: str
    rescued: int

    def describe(self) -> str:
        return f"{self.kind} node={self.node_id} jobs rescued={self.rescued}"


@dataclass(frozen=True, kw_only=True)
class LivenessLost(Event):
    """This node does not hold its liveness lock, so if it died its peers would rescue its jobs
    only after its lease (``error`` says why). bgjobs keeps trying to take it back."""

    node_id: str
    error: str

    def describe(self) -> str:
        return f"{self.kind} node={self.node_id}: {self.error}"


@dataclass(frozen=True, kw_only=True)
class LivenessRestored(Event):
    """This node holds its liveness lock again."""

    node_id: str


Listener = Callable[[Event], None]

PROBLEMS = (
    JobFailed,
    JobDiscarded,
    JobTimedOut,
    QueueError,
    StoreError,
    MaintenanceError,
    LivenessLost,
    NoLiveWorker,
    ScheduleConflict,
)
"""Events an operator should look at (the logging listener writes them at WARNING)."""


def _field_texts(event: Event, skip: tuple[str, ...]) -> list[str]:
    return [
        f"{item.name}={_value_text(getattr(event, item.name))}"
        for item in fields(event)
        if item.name not in skip
    ]


def _value_text(value: object) -> str:
    if isinstance(value, Job):
        return f"{value.name}#{value.id}"
    if isinstance(value, JobError):
        return f"{value.type}: {value.message}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, tuple | list | frozenset | set):
        return ",".join(_value_text(item) for item in value)
    return str(value)


def event_to_dict(event: Event) -> dict[str, object]:
    """A JSON-ready view of an event (for ``--json`` log lines)."""
    out: dict[str, object] = {"event": event.kind}
    for item in fields(event):
        value = getattr(event, item.name)
        if isinstance(value, Job):
            out["job"] = _job_ref(value)
        elif isinstance(value, tuple) and all(isinstance(v, Job) for v in value):
            out[item.name] = [_job_ref(v) for v in value]
        elif isinstance(value, JobError):
            out[item.name] = value.to_dict()
        elif isinstance(value, datetime):
            out[item.name] = value.isoformat()
        elif isinstance(value, timedelta):
            out[item.name] = value.total_seconds()
        else:
            out[item.name] = value
    return out


def _job_ref(job: Job) -> dict[str, object]:
    return {"id": job.id, "name": job.name, "queue": job.queue, "attempt": job.attempt}


class EventDispatcher:
    """Delivers each event to the global listeners plus those of its queue and its worker."""

    def __init__(
        self,
        global_listeners: Iterable[Listener] = (),
        queue_listeners: Mapping[str, Iterable[Listener]] | None = None,
        worker_listeners: Mapping[str, Iterable[Listener]] | None = None,
    ) -> None:
        self._global = list(global_listeners)
        self._by_queue = {k: list(v) for k, v in (queue_listeners or {}).items()}
        self._by_worker = {k: list(v) for k, v in (worker_listeners or {}).items()}

    def add_global(self, listener: Listener) -> None:
        self._global.append(listener)

    def remove_global(self, listener: Listener) -> None:
        self._global.remove(listener)

    def listening(self, queue: str | None, worker: str | None = None) -> bool:
        """Whether any listener would receive an event of this scope (lets hot paths skip
        building events nobody reads)."""
        return bool(
            self._global or self._by_queue.get(queue or "") or self._by_worker.get(worker or "")
        )

    def emit(self, event: Event) -> None:
        queue, worker = _scope_of(event)
        targets = list(self._global)
        if queue is not None:
            targets += self._by_queue.get(queue, ())
        if worker is not None:
            targets += self._by_worker.get(worker, ())
        for listener in targets:
            try:
                listener(event)
            except Exception:  # a listener must never break the runtime
                log.exception(
                    "bgjobs: event listener %r raised on %s; skipped", listener, event.kind
                )


def _scope_of(event: Event) -> tuple[str | None, str | None]:
    if isinstance(event, JobEvent | ScheduledNextRun):
        return event.job.queue, event.job.name
    if isinstance(event, QueueEvent):
        return event.queue, None
    if isinstance(event, NoWorkerForJob):
        return None, event.name
    if isinstance(event, NoLiveWorker):
        return event.queue, event.name
    if isinstance(event, ScheduleConflict | SchedulePaused | ScheduleResumed | ScheduleRemoved):
        return None, event.schedule
    return None, None


def logging_listener(logger: logging.Logger | None = None, level: int = logging.INFO) -> Listener:
    """A listener that writes one line per event to stdlib logging (failures at WARNING)."""
    target = logger or log

    def listen(event: Event) -> None:
        failed = isinstance(event, PROBLEMS)
        target.log(max(level, logging.WARNING) if failed else level, "%s", event.describe())

    return listen
