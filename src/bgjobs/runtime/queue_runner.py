"""One queue's loop: claim as many jobs as there are free slots, run them, enforce timeouts, and
stop the ones someone cancels.

The loop sleeps until the earliest of: a wake-up (local enqueue, another process, a freed slot),
the next job's due time, the next timeout deadline, or the poll interval. It never sleeps blindly
past a known due time, which is what keeps scheduled jobs within milliseconds of their time.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bgjobs.adapters.base import ClaimRequest, Completion, ProgressUpdate, Store
from bgjobs.builder import QueueSpec, WorkerSpec
from bgjobs.events import (
    Event,
    JobProgress,
    JobReserved,
    JobStarted,
    JobTimedOut,
    QueueError,
    QueuePollingStarted,
    QueuePollingStopped,
)
from bgjobs.instrumentation import Instrumentation
from bgjobs.job import Cancelled, Job, JobError, Progress
from bgjobs.runtime.async_loop import AsyncLoop
from bgjobs.runtime.clock import Clock
from bgjobs.runtime.execution import (
    JobTimeout,
    Policy,
    RunningJob,
    cancel_reason,
    cancelled,
    failure,
    not_finishable,
    outcome_of,
    precheck,
)
from bgjobs.runtime.isolation import Claim, Isolation
from bgjobs.runtime.progress import ProgressSlot
from bgjobs.runtime.worker_pool import WorkerPool

_MIN_SLEEP = 0.0005
_RECHECK = 0.002
# How long a cancelled sync handler may take to stop on its own (it sees ``job.cancelled``)
# before it is interrupted the way a timeout interrupts it.
CANCEL_GRACE = 0.5


@dataclass(frozen=True)
class RunnerContext:
    store: Store
    node_id: str
    lease: timedelta
    emit: Callable[[Event], None]
    listening: Callable[[str | None, str | None], bool]
    submit_completion: Callable[[Completion], None]
    policy_for: Callable[[Job, WorkerSpec | None], Policy]
    claim_names: Callable[[str], tuple[str, ...]]  # queue -> the job names this node claims
    async_loop: Callable[[], AsyncLoop]
    now: Callable[[], datetime]  # the store's time, for events and job times
    clock: Clock  # deadlines and sleeps
    isolation: Isolation  # node-wide: suspects run alone
    instrumentation: Instrumentation | None = None  # wraps each run (tracing)


class QueueRunner:
    def __init__(self, spec: QueueSpec, workers: dict[str, WorkerSpec], ctx: RunnerContext):
        self.spec = spec
        self.name = spec.name
        self._workers = workers
        self._ctx = ctx
        self._wake = threading.Event()
        self._claiming = True
        self._lock = threading.Lock()
        self.running: dict[int, RunningJob] = {}
        self._reporting: dict[int, RunningJob] = {}  # running jobs that reported progress
        self._pool = WorkerPool(spec.max_concurrent_jobs, spec.name)
        self._stopped = threading.Event()
        self._errors = 0

    # control ---------------------------------------------------------------------------------
    def notify(self) -> None:
        self._wake.set()

    def stop_claiming(self) -> None:
        self._claiming = False
        self._wake.set()

    def wait_stopped(self, timeout: float) -> bool:
        return self._ctx.clock.wait(self._stopped, timeout)

    def in_flight(self) -> list[RunningJob]:
        with self._lock:
            return list(self.running.values())

    def shutdown_pool(self) -> None:
        self._pool.shutdown()

    def cancel(self, job_id: int) -> bool:
        """Stop job ``job_id`` if it runs here (whether it does): an async handler is cancelled
        at once; a sync handler sees ``job.cancelled`` and is interrupted after CANCEL_GRACE
        unless it returned. Either way the job is archived as cancelled."""
        with self._lock:
            running = self.running.get(job_id)
        if running is None:
            return False
        if running.cancel_requested.is_set():
            return True  # already being stopped
        running.cancel_requested.set()
        if running.cancel is not None:
            self._stop_cancelled(running)
            return True
        grace = self._ctx.clock.monotonic() + CANCEL_GRACE
        with running.lock:
            if running.deadline is None or running.deadline > grace:
                running.deadline = grace  # the loop interrupts it then (_expire_deadlines)
        self._wake.set()
        return True

    # loop ------------------------------------------------------------------------------------
    def loop(self) -> None:
        self._stopped.clear()
        self._ctx.emit(QueuePollingStarted(at=self._ctx.now(), queue=self.name))
        try:
            while self._claiming:
                self._wake.clear()
                timeout = self._tick()
                if self._claiming and timeout > 0:
                    self._ctx.clock.wait(self._wake, timeout)
        finally:
            self._ctx.emit(QueuePollingStopped(at=self._ctx.now(), queue=self.name))
            self._stopped.set()

    def _tick(self) -> float:
        """Claim and dispatch once; return how long to sleep."""
        poll = self.spec.poll_interval.total_seconds()
        self._expire_deadlines()
        if self._reporting:
            self._write_progress()
        free = self.spec.max_concurrent_jobs - len(self.running)
        if free <= 0:
            return self._until_deadline(poll)
        names = self._ctx.claim_names(self.name)
        claim = self._ctx.isolation.begin_claim(self.name)
        if claim is Claim.HOLD:  # woken when the node may claim again
            return self._until_deadline(poll)
        suspect = claim is Claim.SUSPECT
        jobs: list[Job] = []
        try:
            jobs = self._ctx.store.claim(
                ClaimRequest(
                    queue=self.name,
                    node_id=self._ctx.node_id,
                    limit=1 if suspect else free,
                    lease=self._ctx.lease,
                    blocking=self.spec.blocking,
                    names=names,
                    suspects=suspect,
                )
            )
            if suspect or len(jobs) == free:
                due = None
            else:
                due = self._ctx.store.next_due_at(self.name, names)
        except Exception as exc:
            self._errors += 1
            self._ctx.emit(QueueError(at=self._ctx.now(), queue=self.name, error=repr(exc)))
            return min(0.05 * 2.0 ** min(self._errors, 7), 5.0)
        finally:
            self._ctx.isolation.end_claim(self.name, claim, jobs)
        self._errors = 0
        for job in jobs:
            self._dispatch(job)
        if suspect:  # alone now (or none was left): the isolation wakes us when that changes
            return self._until_deadline(poll) if jobs else 0.0
        if len(jobs) == free:
            return self._until_deadline(poll) if len(self.running) >= free else 0.0
        sleep: float
        sleep = poll
        if due is not None:
            until = (due - self._ctx.now()).total_seconds()
            if until > 0:
                sleep = min(sleep, max(until, _MIN_SLEEP))
            elif not self.spec.blocking:
                # Due but not claimed: a small clock offset, or another node's claim in flight.
                # Look again shortly. (A blocking queue's head is running: its completion wakes us.)
                sleep = min(sleep, _RECHECK)
        return self._until_deadline(sleep)

    def _until_deadline(self, sleep: float) -> float:
        with self._lock:
            deadlines = [r.deadline for r in self.running.values() if r.deadline is not None]
            if self._reporting:  # a held-back progress report is due like a deadline
                due = [r.progress_due() for r in self._reporting.values()]
                deadlines += [d for d in due if d is not None]
        if deadlines:
            sleep = min(sleep, max(min(deadlines) - self._ctx.clock.monotonic(), _MIN_SLEEP))
        return sleep

    # running jobs -----------------------------------------------------------------------------
    def _dispatch(self, job: Job) -> None:
        worker = self._workers.get(job.name)
        running = RunningJob(job=job, worker=worker, started=self._ctx.clock.monotonic())
        with self._lock:
            self.running[job.id] = running
        try:
            if worker is not None and worker.timeout is not None:
                running.deadline = running.started + worker.timeout.total_seconds()
            job.attach_touch(lambda extend: self._touch(running, extend))
            job.attach_progress(lambda progress: self._report(running, progress))
            job.attach_cancel_flag(running.cancel_requested)
            if self._ctx.listening(job.queue, job.name):
                self._ctx.emit(JobReserved(at=self._ctx.now(), job=job, node_id=self._ctx.node_id))
            if worker is not None and worker.is_async:
                self._start_async(running, worker)
            else:
                self._pool.submit(lambda: self._run_sync(running))
        except Exception as exc:
            self._finish(running, self._not_finishable(job, exc, "start the job"))

    def _run_sync(self, running: RunningJob) -> None:
        running.thread_id = threading.get_ident()
        try:
            completion = self._traced_sync(running)
        except BaseException as exc:  # bgjobs' own steps failed (the handler's errors are caught)
            _leave_handler(running)
            completion = self._not_finishable(running.job, exc, "prepare the job or its outcome")
        self._finish(running, completion)

    def _traced_sync(self, running: RunningJob) -> Completion:
        tracing = self._ctx.instrumentation
        if tracing is None:
            return self._execute_sync(running)[0]
        with tracing.run(running.job) as scope:
            completion, error = self._execute_sync(running)
            scope.finished(completion, error)
        return completion

    def _execute_sync(self, running: RunningJob) -> tuple[Completion, BaseException | None]:
        """Run the handler: its completion, and what it raised."""
        policy = self._ctx.policy_for(running.job, running.worker)
        completion = precheck(running, policy, self._known)
        if completion is not None:
            _leave_handler(running)
            return completion, None
        assert running.worker is not None
        if self._ctx.listening(running.job.queue, running.job.name):
            self._ctx.emit(JobStarted(at=self._ctx.now(), job=running.job))
        error: BaseException | None = None
        try:
            running.worker.handler(running.job)
        except BaseException as exc:  # a handler must never kill its thread or queue
            error = exc
        finally:
            _leave_handler(running)
        cancel = running.cancel_requested.is_set()
        return outcome_of(running.job, policy, error, cancel_requested=cancel), error

    def _start_async(self, running: RunningJob, worker: WorkerSpec) -> None:
        policy = self._ctx.policy_for(running.job, worker)
        tracing = self._ctx.instrumentation

        async def execute() -> tuple[Completion, BaseException | None]:
            if running.job.schedule is not None:  # its gate asks the database: not on the loop
                completion = await asyncio.to_thread(precheck, running, policy, self._known)
            else:
                completion = precheck(running, policy, self._known)
            if completion is not None:
                return completion, None
            self._ctx.emit(JobStarted(at=self._ctx.now(), job=running.job))
            error: BaseException | None = None
            try:
                await worker.handler(running.job)
            except BaseException as exc:
                error = exc
            cancel = running.cancel_requested.is_set()
            return outcome_of(running.job, policy, error, cancel_requested=cancel), error

        async def run() -> None:
            try:
                if tracing is None:
                    completion, _ = await execute()
                else:
                    # Entered inside the task: the span is current for the handler's awaits only.
                    with tracing.run(running.job) as scope:
                        completion, error = await execute()
                        scope.finished(completion, error)
            except BaseException as exc:  # bgjobs' own steps failed, as in _run_sync
                completion = self._not_finishable(
                    running.job, exc, "prepare the job or its outcome"
                )
            self._finish(running, completion)

        future = self._ctx.async_loop().submit(run())
        running.cancel = lambda: _cancel(future)

    def _not_finishable(self, job: Job, exc: BaseException, doing: str) -> Completion:
        return not_finishable(job, self._ctx.node_id, self._ctx.now(), exc, doing)

    def _finish(self, running: RunningJob, completion: Completion) -> None:
        if not running.take_finish():
            return  # the timeout watchdog already finished this job
        self._forget(running)
        self._ctx.submit_completion(_with_last_progress(running, completion))
        self._wake.set()

    def _forget(self, running: RunningJob) -> None:
        """Free the job's slot (once: after take_finish)."""
        # Only this run's entry: a rescued job re-claimed by this node has a newer one.
        with self._lock:
            if self.running.get(running.job.id) is running:
                del self.running[running.job.id]
            if self._reporting.get(running.job.id) is running:
                del self._reporting[running.job.id]
        self._ctx.isolation.job_done(running.job.id)

    # progress --------------------------------------------------------------------------------
    def _report(self, running: RunningJob, progress: Progress) -> None:
        """``job.set_progress`` (the handler's thread or task): keep it; wake the loop to write
        it if it is due."""
        slot = running.progress
        if slot is None:
            slot = running.progress = ProgressSlot()
            with self._lock:
                if self.running.get(running.job.id) is running:
                    self._reporting[running.job.id] = running
        if slot.report(progress, self._ctx.clock.monotonic()):
            self._wake.set()

    def _write_progress(self) -> None:
        """Write every due progress report of this queue in one statement."""
        now = self._ctx.clock.monotonic()
        with self._lock:
            reporting = list(self._reporting.values())
        due = [(r, p) for r in reporting if r.progress and (p := r.progress.take_due(now))]
        if not due:
            return
        node = self._ctx.node_id
        updates = [ProgressUpdate(r.job.id, node, r.job.attempt, p) for r, p in due]
        try:
            written = set(self._ctx.store.set_progress(updates))
        except Exception:  # reported by the store facade; the values wait for the next try
            for running, progress in due:
                if running.progress is not None:
                    running.progress.put_back(progress)
            return
        for running, value in due:
            job = running.job
            if job.id in written and self._ctx.listening(job.queue, job.name):
                at, fraction, message = self._ctx.now(), value.fraction, value.message
                self._ctx.emit(JobProgress(at=at, job=job, fraction=fraction, message=message))

    def _known(self) -> str:
        return ", ".join(sorted(self._workers)) or "none"

    # timeouts --------------------------------------------------------------------------------
    def _touch(self, running: RunningJob, extend: timedelta | None) -> None:
        worker = running.worker
        extra = extend or (worker.timeout if worker and worker.timeout else None)
        if extra is not None and running.deadline is not None:
            running.deadline = self._ctx.clock.monotonic() + extra.total_seconds()
        lease = max(self._ctx.lease, extra or timedelta(0))
        self._ctx.store.extend_leases(self._ctx.node_id, lease, [running.job.id])

    def expire_deadlines(self) -> None:
        """Enforce timeouts now (the loop does it each tick; stop() during its grace period)."""
        self._expire_deadlines()

    def _expire_deadlines(self) -> None:
        now = self._ctx.clock.monotonic()
        with self._lock:
            expired = [
                r for r in self.running.values() if r.deadline is not None and r.deadline <= now
            ]
        for running in expired:
            if running.cancel_requested.is_set():
                self._stop_cancelled(running)
                continue
            if not running.take_finish():
                continue
            self._forget(running)
            self._interrupt(running, JobTimeout)
            worker = running.worker
            assert worker is not None and worker.timeout is not None
            job = running.job
            self._ctx.emit(JobTimedOut(at=self._ctx.now(), job=job, timeout=worker.timeout))
            error = JobError(
                at=self._ctx.now(),
                attempt=job.attempt,
                type="JobTimeout",
                message=f"{job.name} ran longer than its timeout of {worker.timeout}",
            )
            completion = failure(job, self._ctx.policy_for(job, worker), error)
            self._ctx.submit_completion(_with_last_progress(running, completion))

    def _stop_cancelled(self, running: RunningJob) -> None:
        """Finish a cancelled job now, interrupting its handler if it is still in it."""
        if not running.take_finish():
            return  # its handler returned first: it ends as cancelled through _finish
        self._forget(running)
        self._interrupt(running, Cancelled)
        job = running.job
        policy = self._ctx.policy_for(job, running.worker)
        self._ctx.submit_completion(cancelled(job, policy, cancel_reason(job)))
        self._wake.set()

    def _interrupt(self, running: RunningJob, error: type[BaseException]) -> None:
        if running.cancel is not None:
            running.cancel()
            return
        with running.lock:
            if running.thread_id is None:
                return  # not (or no longer) inside its handler: nothing to interrupt
            # Raises ``error`` in the handler's thread at its next Python bytecode; a thread
            # blocked in C stays stuck until that call returns, so it is retired and replaced.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(running.thread_id), ctypes.py_object(error)
            )
            self._pool.retire(running.thread_id)


def _with_last_progress(running: RunningJob, completion: Completion) -> Completion:
    """The completion carrying the handler's last report if it is not written yet."""
    last = running.progress.take_last() if running.progress is not None else None
    return completion if last is None else replace(completion, progress=last)


def _cancel(future: Future[None]) -> None:
    future.cancel()


def _leave_handler(running: RunningJob) -> None:
    """Mark the thread as out of the handler, and drop a timeout that was sent but not yet
    raised: it must never land in the pool's own code or in the next job."""
    with running.lock:
        if running.thread_id is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(running.thread_id), None)
            running.thread_id = None
