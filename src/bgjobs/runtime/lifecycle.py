"""A node's life: start the loops under a supervisor, run until told to stop (signals included),
then drain, give unfinished jobs back and leave the node registry.

built -> running -> stopping -> stopped; a supervisor that gives up turns running into failed,
and ``stop()`` then ends in failed. A runtime is started once; build a new one to start again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from types import FrameType
from typing import Any

from bgjobs.adapters.base import NodeInfo, NodeLock, Store, Wakeup, alive
from bgjobs.builder import Retention
from bgjobs.errors import RuntimeStateError
from bgjobs.events import (
    EventDispatcher,
    JobReleased,
    RuntimeStarted,
    RuntimeStopped,
    RuntimeStopping,
    SupervisorRestarted,
    WakeupLost,
    WakeupRestored,
)
from bgjobs.instrumentation import Instrumentation
from bgjobs.runtime.async_loop import AsyncLoop
from bgjobs.runtime.cancellation import CancelWatcher
from bgjobs.runtime.clock import StoreTime
from bgjobs.runtime.completer import Completer
from bgjobs.runtime.import_guard import refuse_start_while_importing
from bgjobs.runtime.isolation import Isolation
from bgjobs.runtime.maintenance import Maintenance, MaintenanceConfig, MaintenanceHooks
from bgjobs.runtime.outcomes import OutcomeEvents
from bgjobs.runtime.queue_runner import QueueRunner, RunnerContext
from bgjobs.runtime.routing import Policies, Routes
from bgjobs.runtime.schedule_conflicts import ScheduleConflicts
from bgjobs.runtime.scheduled_jobs import ScheduledJobs
from bgjobs.runtime.supervisor import Supervisor
from bgjobs.runtime.unserved import UnservedJobs
from bgjobs.runtime.upkeep import Upkeep

log = logging.getLogger("bgjobs")

# Beyond the shutdown deadline, a thread join waits this much for a loop that is just ending.
_JOIN_SLACK = 0.5
# The final writes of a stop get at least this long, even when the grace is over.
_MIN_WRITES = 0.5


class State(StrEnum):
    BUILT = "built"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


def final_writes_allowance(grace: float) -> float:
    """How long the last writes of a stop (releases, outcomes, the node row) may take when the
    running jobs used the whole grace: min(grace, 5 s), and at least 1 s."""
    return min(max(grace, 1.0), 5.0)


def new_node_id() -> str:
    """host:pid:random, unique across machines and across restarts of one process id."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LifecycleConfig:
    max_restarts: int
    restart_period: timedelta
    heartbeat_interval: timedelta
    node_timeout: timedelta
    shutdown_grace: timedelta
    retention: Retention
    unknown_worker_timeout: timedelta


class Lifecycle:
    def __init__(
        self,
        config: LifecycleConfig,
        store: Store,
        node_id: str,
        routes: Routes,
        dispatcher: EventDispatcher,
        schedules: ScheduledJobs,
        store_time: StoreTime,
        open_store: Callable[[], None],
        instrumentation: Instrumentation | None = None,
    ) -> None:
        self._config = config
        self._instrumentation = instrumentation
        self._store = store
        self._open_store = open_store
        self._node_id = node_id
        self._routes = routes
        self._dispatcher = dispatcher
        self._emit = dispatcher.emit
        self._schedules = schedules
        self._time = store_time
        self._clock = store_time.clock
        self._policies = Policies(
            routes, node_id, config.retention, schedules.follow_up, schedules.gate, store_time.now
        )
        self._conflicts = ScheduleConflicts(schedules.definitions(), self._emit, store_time.now)
        self._unserved = UnservedJobs(
            store,
            frozenset(q.name for q in routes.queues),
            config.unknown_worker_timeout,
            self._emit,
            store_time.now,
            self._clock,
        )
        self._state = State.BUILT
        self._state_lock = threading.Lock()
        self.runners: dict[str, QueueRunner] = {}
        self._completer: Completer | None = None
        self._maintenance: Maintenance | None = None
        self._upkeep: Upkeep | None = None
        self._supervisor: Supervisor | None = None
        self._async_loop: AsyncLoop | None = None
        self._wakeup: Wakeup | None = None
        self._cancels = CancelWatcher(
            store, node_id, self._running_ids, self._stop_job, store_time.clock
        )
        self._node_lock: NodeLock | None = None
        self._isolation = Isolation(self._notify_all)
        self._started_at = self._clock.now()
        self._failure: str | None = None
        self._stop_requested = threading.Event()
        self._force = threading.Event()

    @property
    def state(self) -> State:
        return self._state

    def notify(self, queue: str) -> None:
        """Wake this node's runner of ``queue``, if it has one (a local enqueue)."""
        if (runner := self.runners.get(queue)) is not None:
            runner.notify()

    def cancel_requested(self, job_id: int) -> None:
        """Someone in this process asked to cancel a running job: stop it if it runs here."""
        self._cancels.notice(job_id)

    def _running_ids(self) -> set[int]:
        return {r.job.id for runner in self.runners.values() for r in runner.in_flight()}

    def _stop_job(self, job_id: int) -> bool:
        return any(runner.cancel(job_id) for runner in self.runners.values())

    # start -------------------------------------------------------------------------------------
    def start(self) -> None:
        refuse_start_while_importing()
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
            for runner in self.runners.values():
                runner.shutdown_pool()
            self.runners = {}
            if self._wakeup is not None:
                self._wakeup.stop()
                self._wakeup = None
            self._release_node_lock()
            self._close_store()
            with self._state_lock:
                self._state = State.BUILT
            raise
        assert self._supervisor is not None and self._completer is not None
        assert self._node_lock is not None
        self._supervisor.spawn("completer", self._completer.loop)
        for name, runner in self.runners.items():
            self._supervisor.spawn(f"queue:{name}", runner.loop)
        config = self._config
        self._maintenance = Maintenance(
            self._store,
            self._node_info,
            self._node_lock,
            MaintenanceConfig(
                config.heartbeat_interval,
                config.node_timeout,
                config.retention,
                queues=tuple(self.runners),
                blocking=tuple(n for n, r in self.runners.items() if r.spec.blocking),
            ),
            MaintenanceHooks(
                register_schedules=self._register_schedules,
                watch_peers=self._watch_peers,
                on_rescued=self._notify_all,
                follow_up=self._schedules.follow_up,
                claim_names=self._claim_names,
                suspects_due=self._isolation.report,
            ),
            self._emit,
            self._time.now,
            self._clock,
        )
        self._supervisor.spawn("maintenance", self._maintenance.loop)
        self._upkeep = Upkeep(self._store, self._emit, self._time.now, self._clock)
        self._supervisor.spawn("upkeep", self._upkeep.loop)
        self._supervisor.spawn("cancels", self._cancels.loop)
        self._emit(RuntimeStarted(at=self._time.now(), node_id=self._node_id))

    def _prepare(self) -> None:
        """Everything start() does that can fail (it touches the database); no thread yet runs
        a loop when this raises."""
        self._open_store()
        self._time.calibrate(self._store.now)
        self._started_at = self._time.now()
        # Before the node registers: a peer must never find a registered node unlocked, and so
        # take it for dead, while it starts.
        self._node_lock = self._store.hold_node_lock(self._node_id)
        self._supervisor = Supervisor(
            self._config.max_restarts,
            self._config.restart_period,
            self._on_restart,
            self._on_give_up,
            self._clock,
        )
        outcomes = OutcomeEvents(
            self._emit, self._dispatcher.listening, self._time.now, lambda q: self.runners.get(q)
        )
        self._completer = Completer(self._store, outcomes.after_complete, self._clock)
        context = RunnerContext(
            store=self._store,
            node_id=self._node_id,
            lease=self._config.node_timeout,
            emit=self._emit,
            listening=self._dispatcher.listening,
            submit_completion=self._completer.submit,
            policy_for=self._policies,
            claim_names=self._claim_names,
            async_loop=self._get_async_loop,
            now=self._time.now,
            clock=self._clock,
            instrumentation=self._instrumentation,
            isolation=self._isolation,
        )
        for queue_spec in self._routes.queues:
            workers = self._routes.workers_of(queue_spec.name)
            self.runners[queue_spec.name] = QueueRunner(queue_spec, workers, context)
        self._schedules.publish()  # before the first beat: a live node's schedules are known
        self._store.heartbeat(self._node_info())  # after the runners exist: it lists the queues
        self._register_schedules(startup=True)
        # Listen before the first claim: a job committed in between is then either claimed by
        # that first pass or announced by the wake-up channel, never left for the poll.
        self._wakeup = self._store.start_wakeup(
            self._on_wake, self._on_channel, self._cancels.notice
        )

    def _register_schedules(self, *, startup: bool = False) -> None:
        if self._schedules.specs:
            # Fresh, so a schedule a newer node now defines differently is left to it.
            self._conflicts.update(self._live_nodes())
        self._schedules.register(startup=startup, skip=self._conflicts.deferred)
        if self._schedules.specs:
            self._notify_all()

    # what the live nodes run ---------------------------------------------------------------------
    def _live_nodes(self) -> list[NodeInfo]:
        return alive(self._store.list_nodes(), self._time.now(), self._config.node_timeout)

    def _watch_peers(self) -> None:
        """Each heartbeat: schedule conflicts, then jobs that no live node can run."""
        live = self._live_nodes()
        deferred = self._conflicts.deferred
        self._conflicts.update(live)
        if self._conflicts.deferred != deferred:
            self._notify_all()  # a runner may claim a schedule again, or stop claiming it
        self._unserved.check(live)

    def _claim_names(self, queue: str) -> tuple[str, ...]:
        return self._routes.claimable(queue, self._conflicts.deferred)

    # stop --------------------------------------------------------------------------------------
    def stop(self, timeout: float | None) -> None:
        with self._state_lock:
            if self._state not in (State.RUNNING, State.FAILED):
                return
            failed = self._state is State.FAILED
            self._state = State.STOPPING
        clock = self._clock
        grace = self._config.shutdown_grace.total_seconds() if timeout is None else timeout
        allowance = final_writes_allowance(grace)
        self._emit(
            RuntimeStopping(
                at=self._time.now(),
                node_id=self._node_id,
                reason=self._failure or "stop requested",
            )
        )
        assert self._supervisor is not None and self._completer is not None
        # Nothing waits for the database past the grace, whatever holds it (a lock held by
        # another process, a server that stopped answering): a write that gives up is retried
        # in the final writes below.
        self._give_up_after(grace)
        deadline = clock.monotonic() + grace
        self._supervisor.stopping.set()
        for runner in self.runners.values():
            runner.stop_claiming()
        for runner in self.runners.values():
            # A claim already in flight still dispatches its jobs: wait for it (it gives up by
            # the deadline), so that those jobs are counted below and released if they must be.
            runner.wait_stopped(max(deadline - clock.monotonic(), 0.0) + _JOIN_SLACK)
        while clock.monotonic() < deadline and not self._force.is_set():
            if not any(r.in_flight() for r in self.runners.values()):
                break
            for runner in self.runners.values():
                runner.expire_deadlines()  # timeouts still apply during the grace period
            clock.sleep(0.01)
        # The final writes get what is left of the grace; if jobs ran until its end, they get
        # the allowance (their releases and last outcomes are still to be written).
        extra = allowance if any(r.in_flight() for r in self.runners.values()) else _MIN_WRITES
        last = max(deadline, clock.monotonic() + extra)
        self._give_up_after(last - clock.monotonic())

        def left() -> float:
            return max(last - clock.monotonic(), 0.0)

        self._release_unfinished()
        self._completer.wait_idle(left())
        self._completer.stop(give_up_after=left())
        self._supervisor.join("completer", left() + _JOIN_SLACK)
        if self._maintenance is not None:
            self._maintenance.stop()
        if self._upkeep is not None:
            self._upkeep.stop()
        self._cancels.stop()
        if self._wakeup is not None:
            self._wakeup.stop()
        for name, runner in self.runners.items():
            runner.shutdown_pool()
            self._supervisor.join(f"queue:{name}", left() + _JOIN_SLACK)
        self._supervisor.join("maintenance", left() + _JOIN_SLACK)
        self._supervisor.join("cancels", left() + _JOIN_SLACK)
        if self._async_loop is not None:
            self._async_loop.stop()
        # A failure is reported by the store facade; the rescuer on other nodes cleans up.
        with contextlib.suppress(Exception):
            self._schedules.unpublish()
        with contextlib.suppress(Exception):
            self._store.remove_node(self._node_id)
        self._release_node_lock()  # after leaving the registry: never registered and unlocked
        self._close_store()  # also cancels a vacuum the upkeep loop may be waiting for
        self._supervisor.join("upkeep", _JOIN_SLACK)
        self._state = State.FAILED if failed else State.STOPPED
        self._emit(RuntimeStopped(at=self._time.now(), node_id=self._node_id))

    def _give_up_after(self, seconds: float) -> None:
        with contextlib.suppress(Exception):  # reported by the store facade
            self._store.give_up_after(seconds)

    def _close_store(self) -> None:
        """Release what the runtime opened (connections, pool, threads). A later enqueue on
        this runtime opens the store again; a pool the caller passed in stays open."""
        try:
            self._store.close()
        except Exception:
            log.exception("bgjobs: closing the store failed")

    def _release_unfinished(self) -> None:
        for runner in self.runners.values():
            unfinished = [r for r in runner.in_flight() if r.take_finish()]
            if not unfinished:
                continue
            ids = [r.job.id for r in unfinished]
            try:
                released = self._store.release(self._node_id, ids)
            except Exception as exc:  # the facade reported it; leases expire, the rescuer acts
                log.error(
                    "bgjobs: stopping with %d unfinished job(s) not released (store error: %r); "
                    "jobs %s stay reserved until their lease expires, then run again",
                    len(ids),
                    exc,
                    ids,
                )
                continue
            for job in released:
                self._emit(JobReleased(at=self._time.now(), job=job))

    def _release_node_lock(self) -> None:
        if self._node_lock is not None:
            self._node_lock.release()
            self._node_lock = None

    # run ---------------------------------------------------------------------------------------
    def run(self, *, install_signal_handlers: bool) -> None:
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
            self.stop(None)
            raise
        try:
            while not self._clock.wait(self._stop_requested, 0.2):
                pass
        finally:
            try:
                self.stop(None)  # still under our handlers: a second signal skips the grace
            finally:
                for sig, handler in restore.items():
                    signal.signal(sig, handler)
        if self._failure is not None:
            raise RuntimeStateError(self._failure)

    def request_stop(self) -> None:
        self._stop_requested.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_requested.is_set():
            self._force.set()  # second signal: stop waiting for running jobs
        self._stop_requested.set()

    # callbacks ---------------------------------------------------------------------------------
    def _node_info(self) -> NodeInfo:
        return NodeInfo(
            id=self._node_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            heartbeat_at=self._time.now(),
            queues=tuple(self.runners),
            workers=self._routes.offers(),
            schedules=self._schedules.definitions(),
            lock_key=self._node_lock.key if self._node_lock is not None else None,
        )

    def _get_async_loop(self) -> AsyncLoop:
        with self._state_lock:
            if self._async_loop is None:
                self._async_loop = AsyncLoop()
            return self._async_loop

    def _on_restart(self, component: str, exc: BaseException, count: int) -> None:
        self._emit(
            SupervisorRestarted(
                at=self._time.now(), component=component, error=repr(exc), restarts=count
            )
        )

    def _on_give_up(self, component: str, exc: BaseException) -> None:
        self._failure = (
            f"{component} crashed more than {self._config.max_restarts} times within "
            f"{self._config.restart_period}; last error: {exc!r}"
        )
        with self._state_lock:
            if self._state is State.RUNNING:
                self._state = State.FAILED
        self._stop_requested.set()

    def _on_wake(self, queue: str | None) -> None:
        if queue is None:
            self._notify_all()
        else:
            self.notify(queue)

    def _on_channel(self, kind: str, error: str | None) -> None:
        if kind == "lost":
            self._emit(WakeupLost(at=self._time.now(), error=error or "connection lost"))
        else:
            self._emit(WakeupRestored(at=self._time.now()))
        self._notify_all()
        self._cancels.notice(None)  # cancel requests may have been missed meanwhile

    def _notify_all(self) -> None:
        for runner in self.runners.values():
            runner.notify()
