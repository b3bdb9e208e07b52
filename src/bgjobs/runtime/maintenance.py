"""Periodic upkeep on every node: heartbeat and lease renewal, rescue of jobs whose node died,
a look at what the live nodes run (schedule conflicts, jobs no node can run), pruning of the
archive and of unique keys nobody holds, and re-registering schedules (so a cancelled pending
run comes back).

Every step is safe when all nodes run it at once: each is one transaction whose conditions are
re-checked inside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from bgjobs.adapters.base import NodeInfo, Store, rescue_error
from bgjobs.builder import Retention
from bgjobs.events import Event, JobDiscarded, JobRescued, MaintenanceError
from bgjobs.job import JobState
from bgjobs.runtime.clock import Clock

PRUNE_EVERY = 60.0
REGISTER_EVERY = 60.0


@dataclass(frozen=True)
class MaintenanceConfig:
    heartbeat_interval: timedelta
    node_timeout: timedelta
    retention: Retention


class Maintenance:
    def __init__(
        self,
        store: Store,
        node: Callable[[], NodeInfo],
        config: MaintenanceConfig,
        emit: Callable[[Event], None],
        register_schedules: Callable[[], None],
        watch_peers: Callable[[], None],
        on_rescued: Callable[[], None],
        now: Callable[[], datetime],
        clock: Clock,
    ) -> None:
        self._now = now
        self._clock = clock
        self._store = store
        self._node = node
        self._config = config
        self._emit = emit
        self._register_schedules = register_schedules
        self._watch_peers = watch_peers
        self._on_rescued = on_rescued
        self._stop = threading.Event()
        self._last_prune = 0.0
        self._last_register = clock.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def loop(self) -> None:
        interval = self._config.heartbeat_interval.total_seconds()
        while not self._clock.wait(self._stop, interval):
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
        yield "heartbeat", self.heartbeat
        yield "rescue", self.rescue
        yield "peers", self._watch_peers
        now = self._clock.monotonic()
        if now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            yield "prune", self.prune
        if now - self._last_register >= REGISTER_EVERY:
            self._last_register = now
            yield "schedules", self._register_schedules

    def heartbeat(self) -> None:
        """Tell the registry this node is alive, and keep its jobs' leases from running out."""
        node = self._node()
        self._store.heartbeat(node)
        self._store.extend_leases(node.id, self._config.node_timeout)

    def rescue(self) -> None:
        result = self._store.rescue(self._config.node_timeout)
        at = self._now()
        for job in result.released:
            self._emit(JobRescued(at=at, job=job, reason=rescue_error(job, at).message))
        for job in result.failed:
            self._emit(JobDiscarded(at=at, job=job, error=rescue_error(job, at)))
        if result.released:
            self._on_rescued()

    def prune(self) -> None:
        retention = self._config.retention
        if retention.succeeded is not None:
            self._store.prune(retention.succeeded, [JobState.SUCCEEDED])
        if retention.failed is not None:
            self._store.prune(
                retention.failed, [JobState.FAILED, JobState.DISCARDED, JobState.CANCELLED]
            )
        self._store.prune_keys()
