"""BgJobs: the built runtime. Enqueue from anywhere; start/stop or run() to process jobs."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import FrameType, TracebackType
from typing import Any

from bgjobs.adapters.base import Applied, Completion, NodeInfo, Outcome, ScheduleState, Store
from bgjobs.builder import BgJobsSpec, QueueSpec, ScheduledJobSpec, WorkerSpec
from bgjobs.errors import RuntimeStateError, UnknownWorkerError
from bgjobs.events import (
    Event,
    EventDispatcher,
    JobCancelled,
    JobDiscarded,
    JobEnqueued,
    JobFailed,
    JobReleased,
    JobSnoozed,
    JobSucceeded,
    Listener,
    Migrated,
    NoWorkerForJob,
    QueueError,
    RuntimeStarted,
    RuntimeStopped,
    RuntimeStopping,
    ScheduledNextRun,
    SupervisorRestarted,
)
from bgjobs.job import Job, NewJob
from bgjobs.job_requests import JobRequest, build_new_job
from bgjobs.payload import JSON
from bgjobs.runtime import scheduling
from bgjobs.runtime.async_loop import AsyncLoop
from bgjobs.runtime.completer import Completer
from bgjobs.runtime.execution import Policy, backoff_for
from bgjobs.runtime.maintenance import Maintenance, MaintenanceConfig
from bgjobs.runtime.queue_runner import QueueRunner, RunnerContext
from bgjobs.runtime.supervisor import Supervisor


class State(StrEnum):
    BUILT = "built"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    schedule: str
    queue: str
    next_run_at: datetime | None
    running: bool
    last_finished_at: datetime | None
    last_outcome: str | None

    @classmethod
    def from_state(cls, state: ScheduleState) -> ScheduleInfo:
        """From what the database knows (its stored definition stands in for the schedule)."""
        return cls(
            name=state.name,
            schedule=state.definition,
            queue=state.queue,
            next_run_at=state.next_run_at,
            running=state.running,
            last_finished_at=state.last_finished_at,
            last_outcome=state.last_outcome,
        )


@dataclass(frozen=True)
class _Route:
    worker: WorkerSpec
    queue: QueueSpec
    scheduled: ScheduledJobSpec | None


_import_guard = threading.local()


@contextmanager
def no_start_while_importing(target: str) -> Iterator[None]:
    """While the CLI imports an app, a ``start()``/``run()`` at module level is refused with a
    hint instead of silently running jobs before the CLI is ready."""
    _import_guard.target = target
    try:
        yield
    finally:
        _import_guard.target = None


def new_node_id() -> str:
    """host:pid:random, unique across machines and across restarts of one process id."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class BgJobs:
    def __init__(self, spec: BgJobsSpec) -> None:
        self.spec = spec
        self.store: Store = spec.store
        self.node_id = new_node_id()
        self._routes = _routes(spec)
        self._queue_specs = _queue_specs(spec)
        self._dispatcher = EventDispatcher(
            spec.listeners,
            {q.name: q.listeners for q in self._queue_specs},
            {name: route.worker.listeners for name, route in self._routes.items()},
        )
        self._state = State.BUILT
        self._state_lock = threading.Lock()
        self._opened = False
        self._runners: dict[str, QueueRunner] = {}
        self._completer: Completer | None = None
        self._maintenance: Maintenance | None = None
        self._supervisor: Supervisor | None = None
        self._async_loop: AsyncLoop | None = None
        self._wakeup: Any = None
        self._clock_offset = timedelta(0)
        self._started_at = datetime.now(UTC)
        self._failure: str | None = None
        self._stop_requested = threading.Event()
        self._force = threading.Event()
        self._policies: dict[tuple[str, str], Policy] = {}

    # introspection -----------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        return self._queue_specs

    @property
    def job_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._routes))

    def now(self) -> datetime:
        """The store's clock, estimated locally (offset measured at start)."""
        return datetime.now(UTC) + self._clock_offset

    def slots(self) -> dict[str, tuple[int, int]]:
        """Per queue on this node: (jobs in handlers now, max_concurrent_jobs)."""
        return {
            name: (len(runner.in_flight()), runner.spec.max_concurrent_jobs)
            for name, runner in self._runners.items()
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
        migrated = self.store.open()
        self._opened = True
        if migrated is not None:
            self.emit(
                Migrated(
                    at=self.now(),
                    backend=self.store.backend,
                    from_version=migrated[0],
                    to_version=migrated[1],
                )
            )

    def _new_job(self, request: JobRequest) -> NewJob:
        route = self._routes.get(request.name)
        if route is None:
            known = tuple(sorted(self._routes))
            self.emit(NoWorkerForJob(at=self.now(), name=request.name, known=known))
            raise UnknownWorkerError(
                f"no worker named {request.name!r}; known: {', '.join(known) or 'none'}. "
                f"Register one with queue.with_worker(bgjobs.worker({request.name!r}, handler))."
            )
        worker = route.worker
        max_attempts = (
            route.scheduled.max_attempts
            if route.scheduled
            else (worker.max_attempts or route.queue.max_attempts)
        )
        return build_new_job(request, queue=route.queue.name, max_attempts=max_attempts)

    def enqueue(
        self,
        name: str,
        payload: JSON = None,
        *,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int = 0,
    ) -> Job:
        """Persist a job and return it. Lower priority numbers run first."""
        return self.enqueue_many([JobRequest(name, payload, delay, at, priority)])[0]

    def enqueue_many(self, requests: Iterable[JobRequest | tuple[str, JSON]]) -> list[Job]:
        """Insert many jobs in one transaction (all or nothing)."""
        new_jobs = [
            self._new_job(r if isinstance(r, JobRequest) else JobRequest(r[0], r[1]))
            for r in requests
        ]
        if not new_jobs:
            return []
        self._open()
        jobs = self.store.insert_jobs(new_jobs)
        for job in jobs:
            self.emit(JobEnqueued(at=job.created_at, job=job))
        for queue in {job.queue for job in jobs}:
            runner = self._runners.get(queue)
            if runner is not None:
                runner.notify()
        return jobs

    async def aenqueue(
        self,
        name: str,
        payload: JSON = None,
        *,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int = 0,
    ) -> Job:
        """``enqueue`` for async code: the database work runs in a thread."""
        return await asyncio.to_thread(
            self.enqueue, name, payload, delay=delay, at=at, priority=priority
        )

    async def aenqueue_many(self, requests: Iterable[JobRequest | tuple[str, JSON]]) -> list[Job]:
        return await asyncio.to_thread(self.enqueue_many, list(requests))

    def cancel(self, job_id: int) -> Job | None:
        """Cancel a waiting job: it is archived as cancelled (``JobCancelled``) and can be retried
        later. Returns None if there is no such job; raises RuntimeStateError if it is running.
        A job that already finished is returned unchanged."""
        self._open()
        before = self.store.get_job(job_id)
        job = self.store.cancel_job(job_id)
        if job is not None and before is not None and not before.state.is_finished:
            self.emit(JobCancelled(at=self.now(), job=job))
        return job

    # scheduled jobs ----------------------------------------------------------------------------
    def schedules(self) -> list[ScheduleInfo]:
        """Each scheduled job with its next run and last outcome."""
        self._open()
        stored = {state.name: state for state in self.store.schedule_states()}
        out = []
        for spec in self.spec.scheduled_jobs:
            state = stored.get(spec.name)
            out.append(
                ScheduleInfo(
                    name=spec.name,
                    schedule=spec.schedule.describe(),
                    queue=self._routes[spec.name].queue.name,
                    next_run_at=state.next_run_at if state else None,
                    running=state.running if state else False,
                    last_finished_at=state.last_finished_at if state else None,
                    last_outcome=state.last_outcome if state else None,
                )
            )
        return out

    def _register_schedules(self, *, startup: bool = False) -> None:
        now = self.now()
        served = self._queues_served_by_peers(now) if startup else set()
        for spec in self.spec.scheduled_jobs:
            queue = self._routes[spec.name].queue.name
            registration = scheduling.registration(spec, queue, now)
            if not startup or queue in served:
                # The missed-runs policy is for runs missed while no node ran them: later, or
                # while another live node serves the queue, an overdue run is just a busy lane.
                registration = scheduling.without_overdue(registration)
            pending = self.store.register_schedule(registration, queue)
            if pending is not None and startup:
                self.emit(
                    ScheduledNextRun(
                        at=now, schedule=spec.name, job=pending, run_at=pending.available_at
                    )
                )
        if self.spec.scheduled_jobs:
            self._notify_all()

    def _queues_served_by_peers(self, now: datetime) -> set[str]:
        alive_since = now - self.spec.node_timeout
        return {
            queue
            for node in self.store.list_nodes()
            if node.id != self.node_id and node.heartbeat_at >= alive_since
            for queue in node.queues
        }

    def _next_run(self, job: Job) -> NewJob | None:
        route = self._routes.get(job.name)
        if job.schedule is None or route is None or route.scheduled is None:
            return None
        due = scheduling.next_due(route.scheduled, job.scheduled_at, self.now())
        return scheduling.run_at(route.scheduled, route.queue.name, due)

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> BgJobs:
        """Start processing in background threads and return at once."""
        importing = getattr(_import_guard, "target", None)
        if importing is not None:
            raise RuntimeStateError(
                f"{importing} starts its runtime while being imported (bg.run() or bg.start() "
                'at module level); put that under `if __name__ == "__main__":` so '
                "`bgjobs run` can start it"
            )
        with self._state_lock:
            if self._state is not State.BUILT:
                raise RuntimeStateError(
                    f"this runtime is {self._state.value}; build a new one to start again"
                )
            self._state = State.RUNNING
        try:
            self._prepare()
        except BaseException:
            # Nothing runs yet: undo what was set up, so the caller can fix the cause and retry.
            for runner in self._runners.values():
                runner.shutdown_pool()
            self._runners = {}
            if self._wakeup is not None:
                self._wakeup.stop()
                self._wakeup = None
            with self._state_lock:
                self._state = State.BUILT
            raise
        assert self._supervisor is not None and self._completer is not None
        self._supervisor.spawn("completer", self._completer.loop)
        for name, runner in self._runners.items():
            self._supervisor.spawn(f"queue:{name}", runner.loop)
        self._maintenance = Maintenance(
            self.store,
            self._node_info,
            MaintenanceConfig(
                self.spec.heartbeat_interval, self.spec.node_timeout, self.spec.retention
            ),
            self.emit,
            self._register_schedules,
            self._notify_all,
            self.now,
        )
        self._supervisor.spawn("maintenance", self._maintenance.loop)
        self.emit(RuntimeStarted(at=self.now(), node_id=self.node_id))
        return self

    def _prepare(self) -> None:
        """Everything start() does that can fail (it touches the database); no thread yet runs
        a loop when this raises."""
        self._open()
        before = datetime.now(UTC)
        database_now = self.store.now()
        # The database read the clock somewhere inside the round trip: assume the middle.
        self._clock_offset = database_now - (before + (datetime.now(UTC) - before) / 2)
        self._started_at = self.now()
        self._supervisor = Supervisor(
            self.spec.max_restarts,
            self.spec.restart_period,
            self._on_restart,
            self._on_give_up,
        )
        self._completer = Completer(self.store, self._after_complete, self._on_store_error)
        context = RunnerContext(
            store=self.store,
            node_id=self.node_id,
            lease=self.spec.node_timeout,
            emit=self.emit,
            listening=self._dispatcher.listening,
            submit_completion=self._completer.submit,
            policy_for=self._policy_for,
            async_loop=self._get_async_loop,
            now=self.now,
        )
        for queue_spec in self._queue_specs:
            workers = {
                name: route.worker
                for name, route in self._routes.items()
                if route.queue.name == queue_spec.name
            }
            runner = QueueRunner(queue_spec, workers, context)
            self._runners[queue_spec.name] = runner
        self.store.heartbeat(self._node_info())  # after the runners exist: it lists the queues
        self._register_schedules(startup=True)
        # Listen before the first claim: a job committed in between is then either claimed by
        # that first pass or announced by the wake-up channel, never left for the poll.
        self._wakeup = self.store.start_wakeup(self._on_wake, self._on_channel)

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, wait up to ``timeout`` (default: the shutdown grace) for running jobs,
        then give unfinished ones back to their queue. Safe to call more than once."""
        with self._state_lock:
            if self._state not in (State.RUNNING, State.FAILED):
                return
            failed = self._state is State.FAILED
            self._state = State.STOPPING
        grace = self.spec.shutdown_grace.total_seconds() if timeout is None else timeout
        self.emit(
            RuntimeStopping(
                at=self.now(), node_id=self.node_id, reason=self._failure or "stop requested"
            )
        )
        assert self._supervisor is not None and self._completer is not None
        self._supervisor.stopping.set()
        for runner in self._runners.values():
            runner.stop_claiming()
        deadline = time.monotonic() + grace
        for runner in self._runners.values():
            # A claim already in flight still dispatches its jobs: wait for it, so that those
            # jobs are counted below and released if they cannot finish.
            runner.wait_stopped(max(deadline - time.monotonic(), 5.0))
        while time.monotonic() < deadline and not self._force.is_set():
            if not any(r.in_flight() for r in self._runners.values()):
                break
            for runner in self._runners.values():
                runner.expire_deadlines()  # timeouts still apply during the grace period
            time.sleep(0.01)
        self._release_unfinished()
        self._completer.wait_idle(max(deadline - time.monotonic(), 2.0))
        self._completer.stop(give_up_after=5.0)
        self._supervisor.join("completer", 5)
        if self._maintenance is not None:
            self._maintenance.stop()
        if self._wakeup is not None:
            self._wakeup.stop()
        for name, runner in self._runners.items():
            runner.shutdown_pool()
            self._supervisor.join(f"queue:{name}", 5)
        self._supervisor.join("maintenance", 5)
        if self._async_loop is not None:
            self._async_loop.stop()
        try:
            self.store.remove_node(self.node_id)
        except Exception as exc:  # the rescuer on other nodes cleans up after us
            self._on_store_error(exc)
        self._state = State.FAILED if failed else State.STOPPED
        self.emit(RuntimeStopped(at=self.now(), node_id=self.node_id))

    def _release_unfinished(self) -> None:
        for runner in self._runners.values():
            unfinished = [r for r in runner.in_flight() if r.take_finish()]
            if not unfinished:
                continue
            try:
                released = self.store.release(self.node_id, [r.job.id for r in unfinished])
            except Exception as exc:  # their leases expire and the rescuer releases them
                self._on_store_error(exc)
                continue
            for job in released:
                self.emit(JobReleased(at=self.now(), job=job))

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Start, block until SIGINT/SIGTERM (or ``request_stop()``), then stop gracefully.
        A second signal skips the grace period. Raises if the supervisor gave up."""
        restore: dict[signal.Signals, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            # Before start(): a signal during start-up then drains instead of killing mid-way.
            for sig in (signal.SIGINT, signal.SIGTERM):
                restore[sig] = signal.signal(sig, self._on_signal)
        try:
            self.start()
        except BaseException:
            for sig, handler in restore.items():
                signal.signal(sig, handler)
            self.stop()
            raise
        try:
            while not self._stop_requested.wait(0.2):
                pass
        finally:
            try:
                self.stop()  # still under our handlers: a second signal skips the grace
            finally:
                for sig, handler in restore.items():
                    signal.signal(sig, handler)
        if self._failure is not None:
            raise RuntimeStateError(self._failure)

    def request_stop(self) -> None:
        """Ask ``run()`` to return (thread-safe; what the signal handler calls)."""
        self._stop_requested.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_requested.is_set():
            self._force.set()  # second signal: stop waiting for running jobs
        self._stop_requested.set()

    def __enter__(self) -> BgJobs:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # callbacks ---------------------------------------------------------------------------------
    def _node_info(self) -> NodeInfo:
        return NodeInfo(
            id=self.node_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            heartbeat_at=self.now(),
            queues=tuple(self._runners),
        )

    def _policy_for(self, job: Job, worker: WorkerSpec | None) -> Policy:
        key = (job.queue, job.name)
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = self._make_policy(job, worker)
        return policy

    def _make_policy(self, job: Job, worker: WorkerSpec | None) -> Policy:
        route = self._routes.get(job.name)
        queue = route.queue if route else self._queue_spec(job.queue)
        retention = self.spec.retention.succeeded
        return Policy(
            node_id=self.node_id,
            backoff=backoff_for(worker, queue),
            keep_succeeded=retention is None or retention > timedelta(0),
            next_run=self._next_run,
            now=self.now,
        )

    def _queue_spec(self, name: str) -> QueueSpec:
        for spec in self._queue_specs:
            if spec.name == name:
                return spec
        return QueueSpec(name=name)

    def _get_async_loop(self) -> AsyncLoop:
        with self._state_lock:
            if self._async_loop is None:
                self._async_loop = AsyncLoop()
            return self._async_loop

    def _after_complete(self, completion: Completion, applied: Applied) -> None:
        job = completion.job
        at = self.now()
        if not applied.applied:
            self.emit(
                QueueError(
                    at=at,
                    queue=job.queue,
                    error=f"job {job.id} was no longer reserved by this node when it finished "
                    "(rescued or released); its outcome was dropped",
                )
            )
            return
        outcome = completion.outcome
        runner = self._runners.get(job.queue)
        if runner is not None and (
            runner.spec.blocking or applied.next_run is not None or outcome is not Outcome.SUCCEEDED
        ):
            runner.notify()
        if not self._dispatcher.listening(job.queue, job.name):
            return
        if outcome is Outcome.SUCCEEDED:
            duration = at - (job.reserved_at or at)
            self.emit(JobSucceeded(at=at, job=job, duration=max(duration, timedelta(0))))
        elif outcome is Outcome.RETRY:
            assert completion.error is not None
            self.emit(
                JobFailed(at=at, job=job, error=completion.error, retry_at=at + completion.delay)
            )
        elif outcome is Outcome.SNOOZED:
            self.emit(JobSnoozed(at=at, job=job, until=at + completion.delay))
        else:
            assert completion.error is not None
            self.emit(JobDiscarded(at=at, job=job, error=completion.error))
        if applied.next_run is not None:
            self.emit(
                ScheduledNextRun(
                    at=at,
                    schedule=job.schedule or job.name,
                    job=applied.next_run,
                    run_at=applied.next_run.available_at,
                )
            )

    def _on_store_error(self, exc: Exception) -> None:
        self.emit(QueueError(at=self.now(), queue="(store)", error=repr(exc)))

    def _on_restart(self, component: str, exc: BaseException, count: int) -> None:
        self.emit(
            SupervisorRestarted(at=self.now(), component=component, error=repr(exc), restarts=count)
        )

    def _on_give_up(self, component: str, exc: BaseException) -> None:
        self._failure = (
            f"{component} crashed more than {self.spec.max_restarts} times within "
            f"{self.spec.restart_period}; last error: {exc!r}"
        )
        with self._state_lock:
            if self._state is State.RUNNING:
                self._state = State.FAILED
        self._stop_requested.set()

    def _on_wake(self, queue: str | None) -> None:
        if queue is None:
            self._notify_all()
        elif (runner := self._runners.get(queue)) is not None:
            runner.notify()

    def _on_channel(self, kind: str, error: str | None) -> None:
        from bgjobs.events import WakeupLost, WakeupRestored

        if kind == "lost":
            self.emit(WakeupLost(at=self.now(), error=error or "connection lost"))
        else:
            self.emit(WakeupRestored(at=self.now()))
        self._notify_all()

    def _notify_all(self) -> None:
        for runner in self._runners.values():
            runner.notify()


def _queue_specs(spec: BgJobsSpec) -> tuple[QueueSpec, ...]:
    queues = list(spec.queues)
    if any(s.queue is None for s in spec.scheduled_jobs):
        queues.append(spec.scheduled_lane)
    return tuple(queues)


def _routes(spec: BgJobsSpec) -> dict[str, _Route]:
    by_name = {q.name: q for q in _queue_specs(spec)}
    routes: dict[str, _Route] = {}
    for queue_spec in spec.queues:
        for worker in queue_spec.workers:
            routes[worker.name] = _Route(worker, queue_spec, None)
    for scheduled in spec.scheduled_jobs:
        queue_name = scheduled.queue or spec.scheduled_lane.name
        routes[scheduled.name] = _Route(scheduled.worker, by_name[queue_name], scheduled)
    return routes
