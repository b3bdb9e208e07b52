"""Writes job outcomes to the store in batches, one transaction per batch.

Handlers hand their Completion over and return at once; under load many completions share one
commit, which is most of the difference between a job library and a raw-SQL loop. A crash between
a handler's return and the flush re-runs that job after its lease (at-least-once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bgjobs.adapters.base import Applied, Completion, Store
from bgjobs.runtime.clock import Clock

log = logging.getLogger("bgjobs")

AfterApply = Callable[[Completion, Applied], None]

MAX_BATCH = 500


class Completer:
    def __init__(self, store: Store, after_apply: AfterApply, clock: Clock) -> None:
        self._store = store  # the runtime's store facade: it reports failed writes
        self._after_apply = after_apply
        self._clock = clock
        self._pending: list[Completion] = []
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stop = False
        self._give_up_at: float | None = None

    def submit(self, completion: Completion) -> None:
        with self._cond:
            self._pending.append(completion)
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._in_flight

    def loop(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if not self._pending:
                    return  # stopping and drained
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self._in_flight = len(batch)
            try:
                results = self._store.complete(batch)
            except Exception as exc:
                failures += 1
                with self._cond:
                    self._pending[:0] = batch  # keep order; nothing is dropped
                    self._in_flight = 0
                if self._give_up_at is not None and self._clock.monotonic() >= self._give_up_at:
                    self._abandon(exc)
                    return
                pause = min(0.05 * 2 ** min(failures, 7), 5.0)
                if self._give_up_at is not None:  # stopping: try once more just before then
                    pause = max(min(pause, self._give_up_at - self._clock.monotonic()), 0.0)
                with self._cond:
                    self._clock.wait(self._cond, pause)
                continue
            failures = 0
            for completion, applied in zip(batch, results, strict=True):
                try:
                    self._after_apply(completion, applied)
                except Exception:
                    log.exception(
                        "bgjobs: after-completion hook failed for job %s", completion.job.id
                    )
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every submitted completion is written (or timeout)."""
        deadline = self._clock.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    return False
                self._clock.wait(self._cond, left)
            return True

    def stop(self, give_up_after: float) -> None:
        """Finish writing what is pending, then end the loop. If the store keeps failing for
        ``give_up_after`` seconds, stop anyway: those jobs are re-run after their lease."""
        with self._cond:
            self._stop = True
            self._give_up_at = self._clock.monotonic() + give_up_after
            self._cond.notify_all()

    def _abandon(self, exc: Exception) -> None:
        with self._cond:
            lost = [c.job.id for c in self._pending]
            self._pending.clear()
        log.error(
            "bgjobs: stopping with %d outcome(s) unwritten (store error: %r); jobs %s stay "
            "reserved until their lease expires, then run again",
            len(lost),
            exc,
            lost,
        )
