"""A runtime's scheduled jobs against the store: registering their pending runs, computing the
run that follows a finished one, and reporting each schedule's state.

The maths (next due time, missed-run policy) is in ``scheduling``; this module applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bgjobs.adapters.base import ScheduleState, Store
from bgjobs.builder import ScheduledJobSpec
from bgjobs.events import Event, ScheduledNextRun
from bgjobs.job import Job, NewJob
from bgjobs.runtime import scheduling
from bgjobs.runtime.routing import Routes


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


class ScheduledJobs:
    def __init__(
        self,
        specs: tuple[ScheduledJobSpec, ...],
        routes: Routes,
        store: Store,
        node_id: str,
        node_timeout: timedelta,
        emit: Callable[[Event], None],
        now: Callable[[], datetime],
    ) -> None:
        self.specs = specs
        self._routes = routes
        self._store = store
        self._node_id = node_id
        self._node_timeout = node_timeout
        self._emit = emit
        self._now = now

    def infos(self) -> list[ScheduleInfo]:
        """Each scheduled job with its next run and last outcome."""
        stored = {state.name: state for state in self._store.schedule_states()}
        out = []
        for spec in self.specs:
            state = stored.get(spec.name)
            out.append(
                ScheduleInfo(
                    name=spec.name,
                    schedule=spec.schedule.describe(),
                    queue=self._routes.queue_of(spec.name),
                    next_run_at=state.next_run_at if state else None,
                    running=state.running if state else False,
                    last_finished_at=state.last_finished_at if state else None,
                    last_outcome=state.last_outcome if state else None,
                )
            )
        return out

    def register(self, *, startup: bool = False) -> None:
        """Make sure each scheduled job has its one pending run (at start, and periodically so a
        cancelled or deleted pending run comes back)."""
        now = self._now()
        served = self._queues_served_by_peers(now) if startup else set()
        for spec in self.specs:
            queue = self._routes.queue_of(spec.name)
            registration = scheduling.registration(spec, queue, now)
            if not startup or queue in served:
                # The missed-runs policy is for runs missed while no node ran them: later, or
                # while another live node serves the queue, an overdue run is just a busy lane.
                registration = scheduling.without_overdue(registration)
            pending = self._store.register_schedule(registration, queue)
            if pending is not None and startup:
                self._emit(
                    ScheduledNextRun(
                        at=now, schedule=spec.name, job=pending, run_at=pending.available_at
                    )
                )

    def _queues_served_by_peers(self, now: datetime) -> set[str]:
        alive_since = now - self._node_timeout
        # A registered node whose liveness lock is free is dead, however fresh its heartbeat:
        # a node restarted within the node timeout must not take its predecessor for a peer.
        dead = set(self._store.free_nodes(self._node_id))
        return {
            queue
            for node in self._store.list_nodes()
            if node.id != self._node_id and node.heartbeat_at >= alive_since and node.id not in dead
            for queue in node.queues
        }

    def next_run(self, job: Job) -> NewJob | None:
        """The run after ``job`` (None if it is not a scheduled job of this deployment)."""
        route = self._routes.get(job.name)
        if job.schedule is None or route is None or route.scheduled is None:
            return None
        due = scheduling.next_due(route.scheduled, job.scheduled_at, self._now())
        return scheduling.run_at(route.scheduled, route.queue.name, due)
