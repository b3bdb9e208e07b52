"""A node's life: start the loops under a supervisor, run until told to stop (signals included),
then drain, give unfinished jobs back and leave the node registry.

built -> running -> stopping -> stopped; a supervisor that gives up turns running into failed,
and ``stop()`` then ends in failed. A runtime is started once; build a new one to start again.
"""

from __future__ import annotations

import contextlib
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

from bgjobs.adapters.base import NodeInfo, NodeLock, Store, Wakeup
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
from bgjobs.runtime.async_loop import AsyncLoop
from bgjobs.runtime.clock import StoreTime
from bgjobs.runtime.completer import Completer
from bgjobs.runtime.import_guard import refuse_start_while_importing
from bgjobs.runtime.isolation import Isolation
from bgjobs.runtime.maintenance import Maintenance, MaintenanceConfig, MaintenanceHooks
from bgjobs.runtime.outcomes import OutcomeEvents
from bgjobs.runtime.queue_runner import QueueRunner, RunnerContext
from bgjobs.runtime.routing import Policies, Routes
from bgjobs.runtime.scheduled_jobs import ScheduledJobs
from bgjobs.runtime.supervisor import Supervisor


class State(StrEnum):
    BUILT = "built"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


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
    ) -> None:
        self._config = config
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
            routes, node_id, config.retention, schedules.next_run, store_time.now
        )
        self._state = State.BUILT
        self._state_lock = threading.Lock()
        self.runners: dict[str, QueueRunner] = {}
        self._completer: Completer | None = None
        self._maintenance: Maintenance | None = None
        self._supervisor: Supervisor | None = None
        self._async_loop: AsyncLoop | None = None
        self._wakeup: Wakeup | None = None
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
                on_rescued=self._notify_all,
                next_run=self._schedules.next_run,
                suspects_due=self._isolation.report,
            ),
            self._emit,
            self._time.now,
            self._clock,
        )
        self._supervisor.spawn("maintenance", self._maintenance.loop)
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
            async_loop=self._get_async_loop,
            now=self._time.now,
            clock=self._clock,
            isolation=self._isolation,
        )
        for queue_spec in self._routes.queues:
            workers = self._routes.workers_of(queue_spec.name)
            self.runners[queue_spec.name] = QueueRunner(queue_spec, workers, context)
        self._store.heartbeat(self._node_info())  # after the runners exist: it lists the queues
        self._register_schedules(startup=True)
        # Listen before the first claim: a job committed in between is then either claimed by
        # that first pass or announced by the wake-up channel, never left for the poll.
        self._wakeup = self._store.start_wakeup(self._on_wake, self._on_channel)

    def _register_schedules(self, *, startup: bool = False) -> None:
        self._schedules.register(startup=startup)
        if self._schedules.specs:
            self._notify_all()

    # stop --------------------------------------------------------------------------------------
    def stop(self, timeout: float | None) -> None:
        with self._state_lock:
            if self._state not in (State.RUNNING, State.FAILED):
                return
            failed = self._state is State.FAILED
            self._state = State.STOPPING
        clock = self._clock
        grace = self._config.shutdown_grace.total_seconds() if timeout is None else timeout
        self._emit(
            RuntimeStopping(
                at=self._time.now(),
                node_id=self._node_id,
                reason=self._failure or "stop requested",
            )
        )
        assert self._supervisor is not None and self._completer is not None
        self._supervisor.stopping.set()
        for runner in self.runners.values():
            runner.stop_claiming()
        deadline = clock.monotonic() + grace
        for runner in self.runners.values():
            # A claim already in flight still dispatches its jobs: wait for it, so that those
            # jobs are counted below and released if they cannot finish.
            runner.wait_stopped(max(deadline - clock.monotonic(), 5.0))
        while clock.monotonic() < deadline and not self._force.is_set():
            if not any(r.in_flight() for r in self.runners.values()):
                break
            for runner in self.runners.values():
                runner.expire_deadlines()  # timeouts still apply during the grace period
            clock.sleep(0.01)
        self._release_unfinished()
        self._completer.wait_idle(max(deadline - clock.monotonic(), 2.0))
        self._completer.stop(give_up_after=5.0)
        self._supervisor.join("completer", 5)
        if self._maintenance is not None:
            self._maintenance.stop()
        if self._wakeup is not None:
            self._wakeup.stop()
        for name, runner in self.runners.items():
            runner.shutdown_pool()
            self._supervisor.join(f"queue:{name}", 5)
        self._supervisor.join("maintenance", 5)
        if self._async_loop is not None:
            self._async_loop.stop()
        # A failure is reported by the store facade; the rescuer on other nodes cleans up.
        with contextlib.suppress(Exception):
            self._store.remove_node(self._node_id)
        self._release_node_lock()  # after leaving the registry: never registered and unlocked
        self._state = State.FAILED if failed else State.STOPPED
        self._emit(RuntimeStopped(at=self._time.now(), node_id=self._node_id))

    def _release_unfinished(self) -> None:
        for runner in self.runners.values():
            unfinished = [r for r in runner.in_flight() if r.take_finish()]
            if not unfinished:
                continue
            try:
                released = self._store.release(self._node_id, [r.job.id for r in unfinished])
            except Exception:  # reported by the store facade; leases expire, the rescuer acts
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

    def _notify_all(self) -> None:
        for runner in self.runners.values():
            runner.notify()
