"""Where the runtime takes time from: one injectable clock.

Every runtime module reads the wall clock, measures durations and sleeps through a ``Clock``,
so a test can later swap in a clock it steps by hand instead of sleeping. ``SYSTEM_CLOCK`` is
the real one. (The SQLite store keeps its own clock: it stamps rows, it does not schedule.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Waitable(Protocol):
    """Something a thread can block on until it is signalled: ``threading.Event``, or a
    ``threading.Condition`` whose lock the caller holds."""

    def wait(self, timeout: float | None = None) -> bool: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall clock, tz-aware UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines and intervals)."""

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        """Block until ``waitable`` is signalled or ``timeout`` seconds pass; True if signalled.
        Every timed sleep of a runtime loop goes through here."""

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        return waitable.wait(timeout)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


class StoreTime:
    """The store's clock, estimated locally: this clock plus an offset measured once at start.

    Job times (due, leases, next runs) are the store's (the database's on Postgres); reading them
    locally saves a round trip per event and keeps working while the database is down."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return self.clock.now() + self._offset

    def calibrate(self, store_now: Callable[[], datetime]) -> None:
        before = self.clock.now()
        database_now = store_now()
        # The database read its clock somewhere inside the round trip: assume the middle.
        self._offset = database_now - (before + (self.clock.now() - before) / 2)
