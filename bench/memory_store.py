"""A Python-only store with just what ``start()`` and a drain need: the runtime's own ceiling.

Not a real backend (no durability, no schedules, no rescue): it exists so that the breakdown can
tell the runtime's per-job cost apart from the database's.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from bgjobs import Store
from bgjobs.adapters.base import Applied, ClaimRequest, Completion, NodeInfo, QueueStats
from bgjobs.job import Job, JobState, NewJob


class _NoWakeup:
    def stop(self) -> None:
        return None


class _OneProcessLock:
    """Every node of a memory store lives in this process: it is alive while the store is."""

    key = "memory"
    problem = None

    def release(self) -> None:
        return None


class MemoryStore:
    backend = "memory"
    display_url = "memory://"
    liveness_confirm = timedelta(0)

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def give_up_after(self, seconds: float | None) -> None:
        return None

    def upkeep(self) -> None:
        return None

    def now(self) -> datetime:
        return datetime.now(UTC)

    def heartbeat(self, node: NodeInfo) -> None:
        return None

    def remove_node(self, node_id: str) -> None:
        return None

    def list_nodes(self) -> list[NodeInfo]:
        return []

    def waiting_names(self) -> list[Any]:
        return []

    def hold_node_lock(self, node_id: str) -> _OneProcessLock:
        return _OneProcessLock()

    def free_nodes(self, exclude: str) -> list[str]:
        return []

    def suspect_queues(self, queues: Sequence[str], blocking: Sequence[str],
                       names: Any = None) -> set[str]:
        return set()

    def register_schedule(self, registration: Any, queue: str) -> None:
        return None

    def start_wakeup(self, on_wake: Any, on_channel: Any, on_cancel: Any = None) -> _NoWakeup:
        return _NoWakeup()

    def cancel_requested(self, node_id: str) -> list[int]:
        return []

    def insert_jobs(self, jobs: Sequence[NewJob], *, conn: object = None) -> list[Job]:
        now = self.now()
        made = []
        with self._lock:
            for new in jobs:
                job = Job(id=next(self._ids), queue=new.queue, name=new.name,
                          raw_payload=new.raw_payload, state=JobState.AVAILABLE,
                          priority=new.priority, attempt=0, max_attempts=new.max_attempts,
                          available_at=now, created_at=now, scheduled_at=now)
                self._jobs[job.id] = job
                made.append(job)
        return made

    def claim(self, request: ClaimRequest) -> list[Job]:
        now = self.now()
        with self._lock:
            free = list(itertools.islice(self._free(request.queue, request.names), request.limit))
            claimed = [replace(j, reserved_by=request.node_id, reserved_at=now,
                               attempt=j.attempt + 1, state=JobState.RUNNING) for j in free]
            for job in claimed:
                self._jobs[job.id] = job
        return claimed

    def _free(self, queue: str, names: Sequence[str] | None = None) -> Any:
        return (
            j
            for j in self._jobs.values()
            if j.queue == queue and j.reserved_by is None and (names is None or j.name in names)
        )

    def next_due_at(self, queue: str, names: Sequence[str] | None = None) -> datetime | None:
        with self._lock:
            return next((j.available_at for j in self._free(queue, names)), None)

    def complete(self, completions: Sequence[Completion]) -> list[Applied]:
        with self._lock:
            for completion in completions:
                self._jobs.pop(completion.job.id, None)
        return [Applied(applied=True) for _ in completions]

    def release(self, node_id: str, job_ids: Sequence[int]) -> list[Job]:
        return []

    def extend_leases(self, node_id: str, lease: timedelta, job_ids: Any = None) -> int:
        return 0

    def queue_stats(self, recent: timedelta) -> list[QueueStats]:
        with self._lock:
            waiting = len(self._jobs)
        return [QueueStats("default", waiting, 0, 0, 0, 0, 0)]


def memory_store() -> Store:
    return cast(Store, MemoryStore())
