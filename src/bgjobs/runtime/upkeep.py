"""Storage upkeep on a loop of its own: every few seconds the store gets to do the housekeeping
its database may not do well enough by itself (Postgres vacuums the hot table once dead rows
pile up: see adapters/postgres/vacuum.py).

Apart from the heartbeat loop, because a vacuum of a large table takes seconds and heartbeats
(which keep this node's leases) must not wait for it. A failure is reported and tried again
next time; stopping the store cancels a vacuum in progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from bgjobs.adapters.base import Store
from bgjobs.events import Event, MaintenanceError
from bgjobs.runtime.clock import Clock

UPKEEP_EVERY = 2.0  # seconds


class Upkeep:
    def __init__(
        self,
        store: Store,
        emit: Callable[[Event], None],
        now: Callable[[], datetime],
        clock: Clock,
        interval: float = UPKEEP_EVERY,
    ) -> None:
        self._store = store
        self._emit = emit
        self._now = now
        self._clock = clock
        self._interval = interval
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def loop(self) -> None:
        while not self._clock.wait(self._stop, self._interval):
            self.run_once()

    def run_once(self) -> None:
        try:
            self._store.upkeep()
        except Exception as exc:
            if not self._stop.is_set():  # a vacuum cancelled by stopping is no error
                self._emit(MaintenanceError(at=self._now(), task="upkeep", error=repr(exc)))
