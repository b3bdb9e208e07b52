"""Periodic upkeep on every node: heartbeat and lease renewal, rescue of jobs whose node died,
a look at what the live nodes run (schedule conflicts, jobs no node can run), pruning of the
archive and of unique keys nobody holds, and re-registering schedules (so a cancelled pending
run comes back).

A round runs every ``PEER_CHECK_EVERY`` seconds. Each round looks at the peers' liveness locks
(one cheap query) and rescues the jobs of nodes found dead at once, and tells the queue runners
which queues have suspects waiting; heartbeat, the lease rescuer (the fallback for what no lock
shows: a hung process, a partitioned network) and the look at what the live nodes run happen
every heartbeat interval.

Every step is safe when all nodes run it at once: each is one transaction whose conditions are
re-checked inside it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from bgjobs.adapters.base import FollowUp, FollowUpOf, NodeInfo, NodeLock, RescueResult, Store
from bgjobs.builder import Retention
from bgjobs.events import (
    Event,
    JobDiscarded,
    JobRescued,
    LivenessLost,
    LivenessRestored,
    MaintenanceError,
    NodeDied,
    ScheduledNextRun,
)
from bgjobs.job import Job, JobState
from bgjobs.runtime.clock import Clock
from bgjobs.runtime.liveness import PeerWatch

PEER_CHECK_EVERY = 0.5
PRUNE_EVERY = 60.0
REGISTER_EVERY = 60.0


@dataclass(frozen=True)
class MaintenanceConfig:
    heartbeat_interval: timedelta
    node_timeout: timedelta
    retention: Retention
    queues: tuple[str, ...] = ()  # the queues this node serves
    blocking: tuple[str, ...] = ()  # those of them that are blocking


@dataclass(frozen=True)
class MaintenanceHooks:
    register_schedules: Callable[[], None]
    watch_peers: Callable[[], None]  # schedule conflicts, jobs that no live node runs
    on_rescued: Callable[[], None]  # rescued jobs are waiting: wake the queue runners
    follow_up: FollowUpOf  # for a scheduled run that a rescue failed for good
    claim_names: Callable[[str], tuple[str, ...]]  # queue -> the job names this node claims
    suspects_due: Callable[[set[str]], None]  # the node's queues with suspects due now


class Maintenance:
    def __init__(
        self,
        store: Store,
        node: Callable[[], NodeInfo],
        node_lock: NodeLock,
        config: MaintenanceConfig,
        hooks: MaintenanceHooks,
        emit: Callable[[Event], None],
        now: Callable[[], datetime],
        clock: Clock,
    ) -> None:
        self._now = now
        self._clock = clock
        self._store = store
        self._node = node
        self._node_id = node().id
        self._lock = node_lock
        self._config = config
        self._hooks = hooks
        self._emit = emit
        self._peers = PeerWatch(store.liveness_confirm, clock)
        self._stop = threading.Event()
        self._last_beat = clock.monotonic()
        self._last_prune = 0.0
        self._last_register = clock.monotonic()
        self._lock_key: str | None = node_lock.key
        if self._lock_key is None:
            self._report_lock()

    def stop(self) -> None:
        self._stop.set()

    def loop(self) -> None:
        # The first round after one tick, not at once: start-up's own queries come first.
        tick = min(PEER_CHECK_EVERY, self._config.heartbeat_interval.total_seconds())
        while not self._clock.wait(self._stop, tick):
            self.run_once()

    def run_once(self) -> None:
        """One round; a failing step is reported and ends the round (the next one retries)."""
        for task, step in self._due_steps():
            try:
                step()
            except Exception as exc:
                # Stamped locally (``now`` never asks the database: it may be what is down).
                self._emit(MaintenanceError(at=self._now(), task=task, error=repr(exc)))
                return

    def _due_steps(self) -> Iterator[tuple[str, Callable[[], None]]]:
        now = self._clock.monotonic()
        interval = self._config.heartbeat_interval.total_seconds()
        if self._lock_changed() or now - self._last_beat >= interval:
            self._last_beat = now
            yield "heartbeat", self.heartbeat
            yield "rescue", self.rescue
            yield "peers", self._hooks.watch_peers
        yield "liveness", self.check_peers
        yield "suspects", self.find_suspects
        if now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            yield "prune", self.prune
        if now - self._last_register >= REGISTER_EVERY:
            self._last_register = now
            yield "schedules", self._hooks.register_schedules

    def heartbeat(self) -> None:
        """Tell the registry this node is alive, and keep its jobs' leases from running out."""
        node = self._node()
        self._store.heartbeat(node)
        self._store.extend_leases(node.id, self._config.node_timeout)

    def rescue(self) -> None:
        """The lease rescuer: jobs whose lease ran out, whatever their node's lock says."""
        self._announce(self._store.rescue(self._config.node_timeout, self._follow_up))

    def check_peers(self) -> None:
        """Rescue at once the jobs of peers whose liveness lock is free: their process is gone."""
        try:
            free = self._store.free_nodes(self._node_id)
        except Exception:
            self._peers.forget()
            raise
        dead = self._peers.dead(free)
        if not dead:
            return
        result = self._store.rescue_nodes(dead, self._follow_up)
        self._peers.forget(dead)
        per_node = Counter(job.reserved_by for job in (*result.released, *result.failed))
        at = self._now()
        for node in result.nodes:
            self._emit(NodeDied(at=at, node_id=node, rescued=per_node[node]))
        self._announce(result)

    def find_suspects(self) -> None:
        """Tell the runners which queues have a suspect this node could claim (of its names)."""
        config = self._config
        names = {queue: self._hooks.claim_names(queue) for queue in config.queues}
        found = self._store.suspect_queues(config.queues, config.blocking, names)
        self._hooks.suspects_due(found)

    def prune(self) -> None:
        retention = self._config.retention
        if retention.succeeded is not None:
            self._store.prune(retention.succeeded, [JobState.SUCCEEDED])
        if retention.failed is not None:
            self._store.prune(
                retention.failed, [JobState.FAILED, JobState.DISCARDED, JobState.CANCELLED]
            )
        self._store.prune_keys()

    # helpers -----------------------------------------------------------------------------------
    def _announce(self, result: RescueResult) -> None:
        at = self._now()
        for job in result.released:
            self._emit(JobRescued(at=at, job=job, reason=result.errors[job.id].message))
        for job in result.failed:
            self._emit(JobDiscarded(at=at, job=job, error=result.errors[job.id]))
        for run in result.next_runs:
            schedule = run.schedule or run.name
            self._emit(ScheduledNextRun(at=at, schedule=schedule, job=run, run_at=run.available_at))
        if result.released or result.next_runs:
            self._hooks.on_rescued()

    def _follow_up(self, job: Job) -> FollowUp:
        """The schedule's next run and history, or none if they cannot be computed
        (re-registration then restores a run); never an error inside the rescue's transaction."""
        try:
            return self._hooks.follow_up(job)
        except Exception as exc:
            error = f"the run after {job.name}#{job.id} could not be computed: {exc!r}"
            self._emit(MaintenanceError(at=self._now(), task="rescue", error=error))
            return FollowUp()

    def _lock_changed(self) -> bool:
        """Whether this node's liveness lock came or went since the registry last heard (the
        heartbeat then records it at once); says so with an event."""
        key = self._lock.key
        if key == self._lock_key:
            return False
        self._lock_key = key
        self._report_lock()
        return True

    def _report_lock(self) -> None:
        at = self._now()
        if self._lock_key is None:
            problem = self._lock.problem or "unknown"
            self._emit(LivenessLost(at=at, node_id=self._node_id, error=problem))
        else:
            self._emit(LivenessRestored(at=at, node_id=self._node_id))
