"""The progress a running job reports, throttled so that a tight loop of reports costs little.

A handler may call ``job.set_progress`` as often as it likes: the slot keeps only the latest
value, and the queue's runner writes it when it is due, at most once per ``PROGRESS_INTERVAL``
per job (one set-based statement for all due jobs of the queue). The value still unwritten when
the handler returns rides in the job's completion and is written in the same transaction, so the
last report is always the one stored.
"""

from __future__ import annotations

import threading

from bgjobs.job import Progress

PROGRESS_INTERVAL = 1.0  # seconds between two writes of one job's progress


class ProgressSlot:
    """One running job's latest unwritten report and when the next write may happen (times are
    the runtime clock's ``monotonic()``)."""

    __slots__ = ("_lock", "_next_write", "_pending")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Progress | None = None
        self._next_write = 0.0  # the first report is written at once

    def report(self, progress: Progress, now: float) -> bool:
        """Keep ``progress`` as the latest; True when it may be written now."""
        with self._lock:
            self._pending = progress
            return now >= self._next_write

    def take_due(self, now: float) -> Progress | None:
        """The value to write now, if one is waiting and the interval has passed."""
        with self._lock:
            if self._pending is None or now < self._next_write:
                return None
            value, self._pending = self._pending, None
            self._next_write = now + PROGRESS_INTERVAL
            return value

    def take_last(self) -> Progress | None:
        """The unwritten value, whatever the interval (the job is finishing)."""
        with self._lock:
            value, self._pending = self._pending, None
            return value

    def put_back(self, progress: Progress) -> None:
        """A write failed: keep the value for the next try, unless a newer one came in."""
        with self._lock:
            if self._pending is None:
                self._pending = progress

    def due_at(self) -> float | None:
        """When the waiting value may be written (None: nothing waits)."""
        with self._lock:
            return None if self._pending is None else self._next_write
