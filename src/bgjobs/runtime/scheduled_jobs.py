"""A runtime's scheduled jobs against the store: publishing and registering them, retiring the
schedules no live node defines any more, the gate a claimed run passes before its handler, the
run that follows a finished one, and each schedule's state.

The maths (next due time, missed runs, overlap, the history they write) is in ``scheduling``;
this module applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bgjobs.adapters.base import (
    Completion,
    FollowUp,
    Occurrence,
    Outcome,
    RunGate,
    ScheduleRecord,
    ScheduleState,
    Store,
)
from bgjobs.builder import Overlap, ScheduledJobSpec
from bgjobs.events import Event, ScheduledNextRun, ScheduleRemoved
from bgjobs.job import Job
from bgjobs.runtime import scheduling
from bgjobs.runtime.routing import Routes

# A run that waits for its schedule's run slot is woken by the end of the run holding it (in the
# same transaction); this is only the fallback, should that run vanish without ending.
OVERLAP_WAIT = timedelta(seconds=10)
# A run of a schedule this node does not define goes back for a node that does.
NOT_DEFINED_HERE_WAIT = timedelta(seconds=5)
# The gate could not ask the database: look again shortly rather than run unchecked.
GATE_RETRY = timedelta(seconds=1)


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    schedule: str
    queue: str
    next_run_at: datetime | None
    running: bool
    last_finished_at: datetime | None
    last_outcome: str | None  # how the last run ended
    last_due_at: datetime | None = None
    last_started_at: datetime | None = None
    paused: bool = False
    paused_until: datetime | None = None  # None while paused: until resumed
    removed_at: datetime | None = None
    last_record: ScheduleRecord | None = None  # the newest history entry (a run or a skip)

    @property
    def lateness(self) -> timedelta | None:
        """How long after its due time the last run started."""
        if self.last_started_at is None or self.last_due_at is None:
            return None
        return self.last_started_at - self.last_due_at

    @classmethod
    def from_state(cls, state: ScheduleState, now: datetime) -> ScheduleInfo:
        """From what the database knows (its stored definition stands in for the schedule)."""
        return cls.merged(state.name, state.definition, state.queue, state, now)

    @classmethod
    def merged(
        cls, name: str, schedule: str, queue: str, state: ScheduleState | None, now: datetime
    ) -> ScheduleInfo:
        if state is None:
            return cls(name, schedule, queue, None, False, None, None)
        paused = state.paused(now)
        return cls(
            name=name,
            schedule=schedule,
            queue=queue,
            next_run_at=state.next_run_at,
            running=state.running,
            last_finished_at=state.last_finished_at,
            last_outcome=state.last_outcome,
            last_due_at=state.last_due_at,
            last_started_at=state.last_started_at,
            paused=paused,
            paused_until=state.paused_until if paused else None,
            removed_at=state.removed_at,
            last_record=state.last_record,
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
        """Each scheduled job with its next run, last outcome and pause."""
        stored = {state.name: state for state in self._store.schedule_states()}
        now = self._now()
        return [
            ScheduleInfo.merged(
                spec.name,
                spec.schedule.describe(),
                self._routes.queue_of(spec.name),
                stored.get(spec.name),
                now,
            )
            for spec in self.specs
        ]

    # registration ----------------------------------------------------------------------------
    def publish(self) -> None:
        """Say which schedules this node defines (before it first beats, so a starting node is
        never taken for one that no longer defines them)."""
        self._store.publish_schedules(self._node_id, [spec.name for spec in self.specs])

    def unpublish(self) -> None:
        self._store.unpublish_schedules(self._node_id)

    def definitions(self) -> dict[str, str]:
        """Each scheduled job's definition as registration stores it (what the node publishes)."""
        return {spec.name: spec.schedule.describe() for spec in self.specs}

    def register(self, *, startup: bool = False, skip: frozenset[str] = frozenset()) -> None:
        """Make sure each scheduled job has its one pending run (at start, and periodically so a
        cancelled or deleted pending run comes back), then retire the schedules that no live
        node defines any more. ``skip``: schedules a newer node defines differently; its
        registration stands."""
        now = self._now()
        if not startup:
            self.publish()  # again, should it have been taken for a gone node's and forgotten
        served = self._queues_served_by_peers(now) if startup else set()
        for spec in self.specs:
            if spec.name in skip:
                continue
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
        self._retire_undefined()

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

    def _retire_undefined(self) -> None:
        own = {spec.name for spec in self.specs}
        for state in self._store.schedule_states():
            if state.name in own or state.removed_at is not None:
                continue
            removed = self._store.retire_schedule(state.name, self._node_timeout)
            if removed is not None:
                self._emit(
                    ScheduleRemoved(at=self._now(), schedule=state.name, runs=tuple(removed))
                )

    # runs ------------------------------------------------------------------------------------
    def follow_up(self, job: Job) -> FollowUp:
        """What the completion of ``job`` writes for its schedule (nothing for other jobs)."""
        if job.schedule is None:
            return scheduling.NO_FOLLOW_UP
        route = self._routes.get(job.name)
        if route is None or route.scheduled is None:
            return scheduling.NO_FOLLOW_UP
        return scheduling.after_run(route.scheduled, route.queue.name, job, self._now())

    def gate(self, job: Job) -> Completion | None:
        """Before a claimed scheduled run starts its handler: None to run it, else how it ends
        unrun (skipped while paused or while another run goes, waiting for the run slot, or
        given back to a node that defines its schedule)."""
        route = self._routes.get(job.name)
        spec = route.scheduled if route is not None else None
        if route is None or spec is None:
            return self._give_back(job, NOT_DEFINED_HERE_WAIT)
        try:
            verdict = self._store.begin_scheduled_run(job)
        except Exception:  # reported by the store facade; never run past an unanswered gate
            return self._give_back(job, GATE_RETRY)
        if verdict is RunGate.RUN:
            return None
        if verdict is RunGate.BUSY and spec.overlap_policy is Overlap.QUEUE:
            return self._give_back(job, OVERLAP_WAIT)
        skipped = (
            Occurrence.SKIPPED_PAUSED if verdict is RunGate.PAUSED else Occurrence.SKIPPED_OVERLAP
        )
        follow = scheduling.after_skip(spec, route.queue.name, job, self._now(), skipped)
        return Completion(
            job=job,
            node_id=self._node_id,
            outcome=Outcome.SUCCEEDED,
            keep=False,  # a skipped run leaves its record in the history, not the archive
            next_run=follow.next_run,
            history=follow.history,
            skipped=skipped,
        )

    def _give_back(self, job: Job, delay: timedelta) -> Completion:
        # Snoozed: back to the queue without spending an attempt, its due time unchanged.
        return Completion(job=job, node_id=self._node_id, outcome=Outcome.SNOOZED, delay=delay)
