"""Suspects run alone: the node-wide rule that makes a poison pill pay for its own crashes.

A job rescued ``SUSPECT_AFTER`` times is a suspect: it may be what kills its nodes. A node runs a
suspect only when nothing else runs on it, and starts nothing else while it runs, so that if the
node dies then, the crash is the suspect's own, and its rescue is charged as an attempt
(``decisions.plan_rescue``). Jobs that were rescued with it are not charged; they become
suspects themselves if it happens again, and then prove themselves alone.

Maintenance reports which of the node's queues have suspects due. While any do, the runners stop
claiming; once the node is idle, the runner of such a queue claims one suspect, alone. Runners
bracket every claim with ``begin_claim``/``end_claim`` and report each freed slot with
``job_done``, so a claim in flight counts as running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from enum import Enum

from bgjobs.job import Job


class Claim(Enum):
    NORMAL = "normal"  # claim as usual (suspects excluded)
    SUSPECT = "suspect"  # the node is idle: claim one suspect of this queue, to run it alone
    HOLD = "hold"  # claim nothing now: a suspect runs alone here, or the node drains for one


_CLAIMING = -1  # the suspect slot while its claim is in flight


class Isolation:
    def __init__(self, wake_all: Callable[[], None]) -> None:
        self._wake_all = wake_all
        self._lock = threading.Lock()
        self._busy = 0  # handlers running and claims in flight on this node
        self._alone: int | None = None  # the suspect running alone (or _CLAIMING)
        self._due: frozenset[str] = frozenset()  # queues with suspects due (maintenance)
        self._missed: set[str] = set()  # of those, queues whose suspect claim found none

    def report(self, queues: set[str]) -> None:
        """Maintenance: the node's queues with a suspect due now."""
        with self._lock:
            changed = queues != self._due or bool(self._missed)
            self._due, self._missed = frozenset(queues), set()
        if changed:
            self._wake_all()

    def begin_claim(self, queue: str) -> Claim:
        with self._lock:
            if self._alone is not None:
                return Claim.HOLD
            waiting = self._due - self._missed
            if waiting:
                if self._busy == 0 and queue in waiting:
                    self._alone = _CLAIMING
                    return Claim.SUSPECT
                return Claim.HOLD
            self._busy += 1
            return Claim.NORMAL

    def end_claim(self, queue: str, claim: Claim, jobs: Sequence[Job]) -> None:
        """After the claim ``begin_claim`` allowed (``jobs`` empty if it failed)."""
        if claim is Claim.HOLD:
            return
        with self._lock:
            if claim is Claim.NORMAL:
                self._busy += len(jobs) - 1
                return
            if jobs:
                self._alone = jobs[0].id
                self._busy += 1
                return
            self._alone = None
            self._missed.add(queue)  # taken elsewhere meanwhile: wait for the next report
        self._wake_all()

    def job_done(self, job_id: int) -> None:
        """A claimed job's slot is free (its handler ended or timed out)."""
        with self._lock:
            self._busy -= 1
            ended_alone = self._alone == job_id
            if ended_alone:
                self._alone = None
            wake = ended_alone or (self._busy == 0 and bool(self._due - self._missed))
        if wake:
            self._wake_all()
