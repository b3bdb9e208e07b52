"""Jobs that no live node can run. A node claims only the job names it has workers for, so a job
whose worker no live node has (a new kind of job early in a rolling deploy, an old kind after
it, a name enqueued on the wrong queue) waits instead of being discarded by a node that lacks it.

This watch makes the wait visible (``NoLiveWorker``, once per queue and name) and, once the
worker has been missing for the runtime's unknown-worker timeout, discards those jobs with an
error naming the worker and what the live nodes run. The clock is this node's: it starts when
the node first sees the jobs waiting with no live node to run them, and starts over when one
appears or nothing waits any more. A node looks after the queues it serves: jobs on a queue no
live node serves at all (its nodes are down) just wait, as they always did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bgjobs.adapters.base import NodeInfo, Store, WaitingName, describe_offers, unserved
from bgjobs.events import Event, JobDiscarded, NoLiveWorker
from bgjobs.job import JobError
from bgjobs.runtime.clock import Clock

CHECK_EVERY = 60.0  # seconds at most between two looks (each reads every waiting row)


class UnservedJobs:
    def __init__(
        self,
        store: Store,
        queues: frozenset[str],
        timeout: timedelta,
        emit: Callable[[Event], None],
        now: Callable[[], datetime],
        clock: Clock,
    ) -> None:
        self._store = store
        self._queues = queues  # the queues this node serves
        self._timeout = timeout
        self._emit = emit
        self._now = now
        self._clock = clock
        self._every = min(CHECK_EVERY, timeout.total_seconds() / 4)
        self._last_check: float | None = None
        self._missing_since: dict[tuple[str, str], float] = {}  # clock.monotonic()

    def check(self, live: Sequence[NodeInfo]) -> None:
        """Look again if it is time to; ``live`` are the live nodes, this one included."""
        started = self._clock.monotonic()
        if self._last_check is not None and started - self._last_check < self._every:
            return
        self._last_check = started
        ours = [w for w in self._store.waiting_names() if w.queue in self._queues]
        missing = unserved(ours, live)
        keys = {(w.queue, w.name) for w in missing}
        self._missing_since = {k: t for k, t in self._missing_since.items() if k in keys}
        offered = describe_offers(live)
        for waiting in missing:
            key = (waiting.queue, waiting.name)
            since = self._missing_since.get(key)
            if since is None:
                self._missing_since[key] = started
                self._emit(
                    NoLiveWorker(
                        at=self._now(),
                        queue=waiting.queue,
                        name=waiting.name,
                        waiting=waiting.count,
                        offered=offered,
                        discard_after=self._timeout,
                    )
                )
            elif started - since >= self._timeout.total_seconds():
                self._discard(waiting, offered)
                del self._missing_since[key]

    def _discard(self, waiting: WaitingName, offered: str) -> None:
        at = self._now()
        error = JobError(
            at=at,
            attempt=0,  # the store sets each job's own
            type="UnknownWorker",
            message=(
                f"no live node has a worker named {waiting.name!r} for queue {waiting.queue!r} "
                f"(waited {self._timeout} for one); live nodes run: {offered}. Deploy a node "
                f"with bgjobs.worker({waiting.name!r}, handler) on queue {waiting.queue!r}, "
                f"then `bgjobs jobs retry --all-failed --name {waiting.name}`"
            ),
        )
        for job in self._store.discard_unserved(waiting.queue, waiting.name, error):
            self._emit(JobDiscarded(at=at, job=job, error=job.errors[-1] if job.errors else error))
