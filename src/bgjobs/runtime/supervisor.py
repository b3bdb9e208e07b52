"""Restarts crashed runtime loops under a restart intensity (N restarts within T seconds).

A loop keeps its state in its object, not its thread, so a restart never forgets in-flight jobs
and never runs one twice. The user's limit is used as given; when it is exceeded the runtime stops
with an error instead of restarting forever.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from bgjobs.runtime.clock import Clock

log = logging.getLogger("bgjobs")

RestartCallback = Callable[[str, BaseException, int], None]
GiveUpCallback = Callable[[str, BaseException], None]


class Supervisor:
    def __init__(
        self,
        max_restarts: int,
        period: timedelta,
        on_restart: RestartCallback,
        on_give_up: GiveUpCallback,
        clock: Clock,
    ) -> None:
        self._clock = clock
        self._max_restarts = max_restarts
        self._period = period.total_seconds()
        self._on_restart = on_restart
        self._on_give_up = on_give_up
        self._restarts: deque[float] = deque()
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self.stopping = threading.Event()

    def spawn(self, name: str, loop: Callable[[], None]) -> None:
        thread = threading.Thread(
            target=self._guard, args=(name, loop), name=f"bgjobs-{name}", daemon=True
        )
        self._threads[name] = thread
        thread.start()

    def join(self, name: str, timeout: float | None = None) -> None:
        thread = self._threads.get(name)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _guard(self, name: str, loop: Callable[[], None]) -> None:
        while True:
            try:
                loop()
                return
            except BaseException as exc:
                if self.stopping.is_set():
                    log.warning("bgjobs: %s raised while stopping: %r", name, exc)
                    return
                count = self._record_restart()
                if count > self._max_restarts:
                    log.error(
                        "bgjobs: %s crashed %d times within %.0fs; giving up",
                        name,
                        count,
                        self._period,
                        exc_info=exc,
                    )
                    self._on_give_up(name, exc)
                    return
                log.warning("bgjobs: %s crashed (%r); restarting", name, exc, exc_info=exc)
                self._on_restart(name, exc, count)
                # A short growing pause keeps a hard crash loop from spinning a core.
                if self._clock.wait(self.stopping, min(0.05 * 2 ** (count - 1), 2.0)):
                    return

    def _record_restart(self) -> int:
        now = self._clock.monotonic()
        with self._lock:
            self._restarts.append(now)
            while self._restarts and now - self._restarts[0] > self._period:
                self._restarts.popleft()
            return len(self._restarts)
