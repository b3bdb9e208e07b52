"""Which worker and queue a job name goes to, which names a node claims on each queue, and the
policy an outcome is decided by.

Built once from the specs. A job name maps to exactly one worker (``build()`` checked that);
scheduled jobs without a queue of their own run in the dedicated scheduled lane. A node claims
only the names it has workers for, so in a rolling deploy a job of a new kind waits for a node
that runs it instead of being discarded by an old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bgjobs.adapters.base import Completion, FollowUp
from bgjobs.builder import QueueSpec, Retention, ScheduledJobSpec, WorkerSpec
from bgjobs.errors import UnknownWorkerError
from bgjobs.job import Job, NewJob
from bgjobs.job_requests import JobRequest, build_new_job
from bgjobs.runtime.execution import Policy, backoff_for


@dataclass(frozen=True)
class Route:
    worker: WorkerSpec
    queue: QueueSpec
    scheduled: ScheduledJobSpec | None


class Routes:
    def __init__(
        self,
        queues: tuple[QueueSpec, ...],
        scheduled_jobs: tuple[ScheduledJobSpec, ...],
        scheduled_lane: QueueSpec,
    ) -> None:
        lane_used = any(s.queue is None for s in scheduled_jobs)
        self.queues: tuple[QueueSpec, ...] = (*queues, scheduled_lane) if lane_used else queues
        by_queue = {q.name: q for q in self.queues}
        self._routes: dict[str, Route] = {}
        for queue_spec in queues:
            for worker in queue_spec.workers:
                self._routes[worker.name] = Route(worker, queue_spec, None)
        for scheduled in scheduled_jobs:
            queue = by_queue[scheduled.queue or scheduled_lane.name]
            self._routes[scheduled.name] = Route(scheduled.worker, queue, scheduled)
        self._names_by_queue = {q.name: tuple(sorted(self.workers_of(q.name))) for q in self.queues}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._routes))

    @property
    def workers(self) -> dict[str, WorkerSpec]:
        return {name: route.worker for name, route in self._routes.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._routes

    def get(self, name: str) -> Route | None:
        return self._routes.get(name)

    def queue_of(self, name: str) -> str:
        return self._routes[name].queue.name

    def workers_of(self, queue: str) -> dict[str, WorkerSpec]:
        return {
            name: route.worker for name, route in self._routes.items() if route.queue.name == queue
        }

    def offers(self) -> dict[str, tuple[str, ...]]:
        """Per queue, the job names this deployment has workers for (what its nodes publish)."""
        return dict(self._names_by_queue)

    def claimable(self, queue: str, deferred: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """The names a claim on ``queue`` takes: this deployment's workers there, but for
        ``deferred`` scheduled jobs (a newer node's definition of them wins)."""
        names = self._names_by_queue.get(queue, ())
        return tuple(n for n in names if n not in deferred) if deferred else names

    def queue_spec(self, name: str) -> QueueSpec:
        """The spec of queue ``name`` (defaults for a queue this deployment does not define)."""
        for spec in self.queues:
            if spec.name == name:
                return spec
        return QueueSpec(name=name)

    def new_job(self, request: JobRequest) -> NewJob:
        """The row to insert for ``request``, on its worker's queue with its attempt budget."""
        route = self._routes.get(request.name)
        if route is None:
            raise unknown_worker(request.name, self.names)
        max_attempts = (
            route.scheduled.max_attempts
            if route.scheduled
            else (route.worker.max_attempts or route.queue.max_attempts)
        )
        return build_new_job(request, queue=route.queue.name, max_attempts=max_attempts)


def unknown_worker(name: str, known: tuple[str, ...]) -> UnknownWorkerError:
    return UnknownWorkerError(
        f"no worker named {name!r}; known: {', '.join(known) or 'none'}. "
        f"Register one with queue.with_worker(bgjobs.worker({name!r}, handler))."
    )


class Policies:
    """One Policy per (queue, job name), made on first use: backoff from the worker or its queue,
    retention of successes, and a scheduled job's gate and follow-up."""

    def __init__(
        self,
        routes: Routes,
        node_id: str,
        retention: Retention,
        follow_up: Callable[[Job], FollowUp],
        gate: Callable[[Job], Completion | None],
        now: Callable[[], datetime],
    ) -> None:
        self._routes = routes
        self._node_id = node_id
        self._keep_succeeded = retention.succeeded is None or retention.succeeded > timedelta(0)
        self._follow_up = follow_up
        self._gate = gate
        self._now = now
        self._made: dict[tuple[str, str], Policy] = {}

    def __call__(self, job: Job, worker: WorkerSpec | None) -> Policy:
        key = (job.queue, job.name)
        policy = self._made.get(key)
        if policy is None:
            route = self._routes.get(job.name)
            queue = route.queue if route else self._routes.queue_spec(job.queue)
            policy = self._made[key] = Policy(
                node_id=self._node_id,
                backoff=backoff_for(worker, queue),
                keep_succeeded=self._keep_succeeded,
                follow_up=self._follow_up,
                gate=self._gate,
                now=self._now,
            )
        return policy
