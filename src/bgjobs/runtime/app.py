"""BgJobs, the runtime users hold, and BgJobsSpec, the builder whose ``build()`` makes one.

``BgJobs`` is a facade: enqueueing is here; the rest is delegated to one module per job:
routing (``routing``), scheduled jobs (``scheduled_jobs``), start/stop/run and signals
(``lifecycle``), completion outcomes to events (``outcomes``), the CLI's import guard
(``import_guard``) and the door to the store (``store_facade``).

``BgJobsSpec.build()`` returns a ``BgJobs`` and ``BgJobs.spec`` is that ``BgJobsSpec``: the two
refer to each other, so they live in one module. The rest of the spec tree is ``builder``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType

from bgjobs.adapters.base import InEventLoop, ScheduleRecord, Store
from bgjobs.adapters.urls import open_store
from bgjobs.builder import QueueSpec, RuntimeSpec
from bgjobs.events import (
    Event,
    EventDispatcher,
    JobCancelled,
    JobDeduplicated,
    JobEnqueued,
    Listener,
    Migrated,
    NoWorkerForJob,
    SchedulePaused,
    ScheduleResumed,
    StoreError,
)
from bgjobs.instrumentation import combined
from bgjobs.job import Cancellation, CancelOutcome, Job, NewJob, encode_meta
from bgjobs.job_requests import JobRequest
from bgjobs.payload import JSON
from bgjobs.runtime import schedule_control
from bgjobs.runtime.clock import SYSTEM_CLOCK, Clock, StoreTime
from bgjobs.runtime.import_guard import no_start_while_importing
from bgjobs.runtime.lifecycle import Lifecycle, LifecycleConfig, State, new_node_id
from bgjobs.runtime.routing import Routes, unknown_worker
from bgjobs.runtime.scheduled_jobs import ScheduledJobs, ScheduleInfo
from bgjobs.runtime.store_facade import reporting
from bgjobs.unique import Unique

__all__ = [
    "BgJobs",
    "BgJobsSpec",
    "ScheduleInfo",
    "State",
    "new",
    "new_node_id",
    "no_start_while_importing",
]


@dataclass(frozen=True)
class BgJobsSpec(RuntimeSpec):
    """A runtime described with the chainable builder; ``build()`` makes it."""

    def build(self) -> BgJobs:
        self.validate()
        return BgJobs(self)


def new(store: Store | str) -> BgJobsSpec:
    """Start a runtime spec on a store (``bgjobs.sqlite(...)``, ``bgjobs.postgres(...)``) or URL."""
    return BgJobsSpec(store=open_store(store) if isinstance(store, str) else store)


class BgJobs:
    """The built runtime. Enqueue from anywhere; ``start()``/``stop()`` or ``run()`` to process
    jobs. Building touches nothing: the database is opened on first use."""

    def __init__(self, spec: BgJobsSpec, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.spec = spec
        self.store: Store = spec.store
        self.node_id = new_node_id()
        self._routes = Routes(spec.queues, spec.scheduled_jobs, spec.scheduled_lane)
        self._dispatcher = EventDispatcher(
            spec.listeners,
            {q.name: q.listeners for q in self._routes.queues},
            {name: worker.listeners for name, worker in self._routes.workers.items()},
        )
        self._time = StoreTime(clock)
        self._instrumentation = combined(spec.instrumentations)
        # Every store call the runtime makes goes through this facade (failures -> StoreError).
        self._store = reporting(spec.store, self._on_store_failure)
        self._opened = False
        self._schedules = ScheduledJobs(
            spec.scheduled_jobs,
            self._routes,
            self._store,
            self.node_id,
            spec.node_timeout,
            self.emit,
            self.now,
        )
        self._lifecycle = Lifecycle(
            LifecycleConfig(
                max_restarts=spec.max_restarts,
                restart_period=spec.restart_period,
                heartbeat_interval=spec.heartbeat_interval,
                node_timeout=spec.node_timeout,
                shutdown_grace=spec.shutdown_grace,
                retention=spec.retention,
                unknown_worker_timeout=spec.unknown_worker_timeout,
            ),
            self._store,
            self.node_id,
            self._routes,
            self._dispatcher,
            self._schedules,
            self._time,
            self._open,
            self._instrumentation,
        )

    # introspection -----------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._lifecycle.state

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        return self._routes.queues

    @property
    def job_names(self) -> tuple[str, ...]:
        return self._routes.names

    def now(self) -> datetime:
        """The store's clock, estimated locally (offset measured at start)."""
        return self._time.now()

    def slots(self) -> dict[str, tuple[int, int]]:
        """Per queue on this node: (jobs in handlers now, max_concurrent_jobs)."""
        return {
            name: (len(runner.in_flight()), runner.spec.max_concurrent_jobs)
            for name, runner in self._lifecycle.runners.items()
        }

    def add_listener(self, listener: Listener) -> None:
        """Attach a global listener at run time (the CLI's live view uses this)."""
        self._dispatcher.add_global(listener)

    def emit(self, event: Event) -> None:
        self._dispatcher.emit(event)

    # producing ---------------------------------------------------------------------------------
    def _open(self) -> None:
        if self._opened:
            return
        migrated = self._store.open()
        self._opened = True
        if migrated is not None:
            self.emit(
                Migrated(
                    at=self.now(),
                    backend=self._store.backend,
                    from_version=migrated[0],
                    to_version=migrated[1],
                )
            )

    def _new_job(self, request: JobRequest) -> NewJob:
        if request.name not in self._routes:
            known = self._routes.names
            self.emit(NoWorkerForJob(at=self.now(), name=request.name, known=known))
            raise unknown_worker(request.name, known)
        return self._routes.new_job(request)

    def enqueue(
        self,
        name: str,
        payload: JSON = None,
        *,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int = 0,
        unique: Unique | None = None,
        conn: object = None,
    ) -> Job:
        """Persist a job and return it. Lower priority numbers run first.

        ``unique=bgjobs.Unique(...)``: insert it only if no earlier job holds the same key;
        otherwise the earlier job comes back with ``job.duplicate`` True (``JobDeduplicated``).
        ``conn``: your open connection (psycopg, sqlite3 or sqlite-utils, inside a transaction)
        to write the job in your transaction: it exists, and wakes nodes, only if you commit."""
        request = JobRequest(name, payload, delay, at, priority, unique)
        return self.enqueue_many([request], conn=conn)[0]

    def enqueue_many(
        self, requests: Iterable[JobRequest | tuple[str, JSON]], *, conn: object = None
    ) -> list[Job]:
        """Insert many jobs in one transaction (all or nothing); one Job per request, in order.
        A unique request whose key an earlier request of the batch took is its duplicate."""
        new_jobs = [
            self._new_job(r if isinstance(r, JobRequest) else JobRequest(r[0], r[1]))
            for r in requests
        ]
        if not new_jobs:
            return []
        if conn is None:  # a caller's connection is checked by the store instead
            self._open()
        if self._instrumentation is None:
            jobs = self._store.insert_jobs(new_jobs, conn=conn)
        else:
            with self._instrumentation.enqueue(new_jobs) as scope:
                raw_meta = encode_meta(scope.meta)
                if raw_meta is not None:
                    new_jobs = [replace(new, raw_meta=raw_meta) for new in new_jobs]
                jobs = self._store.insert_jobs(new_jobs, conn=conn)
                scope.inserted(jobs)
        pending = conn is not None
        for job in jobs:
            if job.conflict is None:
                self.emit(JobEnqueued(at=job.created_at, job=job, in_transaction=pending))
            else:
                replaced = job.conflict == "replaced"
                self.emit(
                    JobDeduplicated(
                        at=self.now(), job=job, replaced=replaced, in_transaction=pending
                    )
                )
        if conn is None:  # in the caller's transaction, the commit wakes nodes (NOTIFY etc.)
            # A replaced job's run time may have moved closer: its queue is woken too.
            for queue in {job.queue for job in jobs if job.conflict != "kept"}:
                self._lifecycle.notify(queue)
        return jobs

    async def aenqueue(
        self,
        name: str,
        payload: JSON = None,
        *,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int = 0,
        unique: Unique | None = None,
        conn: object = None,
    ) -> Job:
        """``enqueue`` for async code: the database work runs in a thread. ``conn`` may be a
        ``psycopg.AsyncConnection`` inside a transaction (Postgres)."""
        request = JobRequest(name, payload, delay, at, priority, unique)
        return (await self.aenqueue_many([request], conn=conn))[0]

    async def aenqueue_many(
        self, requests: Iterable[JobRequest | tuple[str, JSON]], *, conn: object = None
    ) -> list[Job]:
        return await asyncio.to_thread(self.enqueue_many, list(requests), conn=_in_loop(conn))

    def cancel(self, job_id: int, *, conn: object = None) -> Cancellation:
        """Cancel a job. Waiting: it is archived as cancelled now (``JobCancelled`` from here).
        Running: its node, wherever it is, stops it within about a second and archives it as
        cancelled (``JobCancelled`` there); the outcome is ``REQUESTED``. Finished: nothing
        changes and the outcome is ``FINISHED`` (``job.state`` says how it ended); no such job:
        ``NOT_FOUND``. ``conn`` as for ``enqueue``."""
        if conn is None:
            self._open()
        result = self._store.cancel_job(job_id, conn=conn)
        if result.outcome is CancelOutcome.CANCELLED:
            assert result.job is not None
            pending = conn is not None
            self.emit(JobCancelled(at=self.now(), job=result.job, in_transaction=pending))
        elif result.outcome is CancelOutcome.REQUESTED and conn is None:
            self._lifecycle.cancel_requested(job_id)  # this node may be the one running it
        return result

    async def acancel(self, job_id: int, *, conn: object = None) -> Cancellation:
        """``cancel`` for async code (``conn`` may be a ``psycopg.AsyncConnection``)."""
        return await asyncio.to_thread(self.cancel, job_id, conn=_in_loop(conn))

    def get_job(self, job_id: int) -> Job | None:
        """The job as stored now (waiting, running or archived), or None. ``.progress`` is what
        its handler last reported, ``.meta`` what integrations stored with it."""
        self._open()
        return self._store.get_job(job_id)

    def schedules(self) -> list[ScheduleInfo]:
        """Each scheduled job with its next run, last outcome and pause."""
        self._open()
        return self._schedules.infos()

    def schedule_history(self, name: str, limit: int = 50) -> list[ScheduleRecord]:
        """What became of each due time of schedule ``name``, newest first: ran (where, how
        late, how it ended), coalesced, or skipped (missed-run policy, overlap, paused)."""
        self._open()
        return schedule_control.history(self._store, name, limit)

    def pause_schedule(self, name: str, until: datetime | timedelta | None = None) -> ScheduleInfo:
        """Pause schedule ``name`` on every node, until resumed or until ``until`` (a time, or
        a duration from now). Its occurrences are recorded as skipped while paused."""
        self._open()
        now = self.now()
        state = schedule_control.pause(self._store, name, schedule_control.pause_until(until, now))
        self.emit(SchedulePaused(at=now, schedule=name, until=state.paused_until))
        return ScheduleInfo.from_state(state, now)

    def resume_schedule(self, name: str) -> ScheduleInfo:
        """Resume schedule ``name``: the next occurrence on its grid runs."""
        self._open()
        state = schedule_control.resume(self._store, name)
        now = self.now()
        self.emit(ScheduleResumed(at=now, schedule=name))
        return ScheduleInfo.from_state(state, now)

    def run_schedule_now(self, name: str) -> Job | None:
        """Run schedule ``name`` once now, beside its grid (its regular run keeps its time).
        None when a run-now run of it is already waiting or running."""
        self._open()
        job = schedule_control.run_now(self._store, name)
        if job is not None:
            self.emit(JobEnqueued(at=job.created_at, job=job))
            self._lifecycle.notify(job.queue)
        return job

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> BgJobs:
        """Start processing in background threads and return at once."""
        self._lifecycle.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, wait up to ``timeout`` (default: the shutdown grace) for running jobs,
        then give unfinished ones back to their queue. Safe to call more than once."""
        self._lifecycle.stop(timeout)

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Start, block until SIGINT/SIGTERM (or ``request_stop()``), then stop gracefully.
        A second signal skips the grace period. Raises if the supervisor gave up."""
        self._lifecycle.run(install_signal_handlers=install_signal_handlers)

    def request_stop(self) -> None:
        """Ask ``run()`` to return (thread-safe; what the signal handler calls)."""
        self._lifecycle.request_stop()

    def __enter__(self) -> BgJobs:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _on_store_failure(self, operation: str, exc: Exception) -> None:
        # Stamped locally: the database may be what is down.
        self.emit(StoreError(at=self.now(), operation=operation, error=repr(exc)))


def _in_loop(conn: object) -> object:
    """An async caller's connection, with the event loop its statements must run on."""
    return None if conn is None else InEventLoop(conn, asyncio.get_running_loop())
