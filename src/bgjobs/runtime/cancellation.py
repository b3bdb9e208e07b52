"""How a node learns that someone cancelled a job it is running, from any process or node.

``bg.cancel(id)`` and ``bgjobs jobs cancel ID`` flag the job's row (``cancel_requested_at``).
The node running it hears of it here, then hands the job to its queue runner, which stops it
(``QueueRunner.cancel``) and archives it as cancelled with a ``JobCancelled`` event:

- Postgres: at once, from a NOTIFY with the job's id on the store's cancel channel;
- SQLite: after any commit to the database (the wake-up watcher's ``PRAGMA data_version``),
  by reading the node's flagged jobs, at most every ``MIN_GAP``;
- a ``cancel`` in this very process: at once, with the id;
- and in any case every ``FALLBACK`` while the node runs jobs (a missed notification, a
  wake-up channel that was down).

Reads happen only while the node runs jobs, so an idle node costs nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from bgjobs.adapters.base import Store
from bgjobs.runtime.clock import Clock

MIN_GAP = 0.05  # seconds between two reads of the flagged jobs
FALLBACK = 1.0  # seconds: read them at least this often while jobs run


class CancelWatcher:
    def __init__(
        self,
        store: Store,
        node_id: str,
        running: Callable[[], set[int]],
        stop_job: Callable[[int], bool],
        clock: Clock,
    ) -> None:
        self._store = store  # the runtime's store facade: failures are reported there
        self._node_id = node_id
        self._running = running
        self._stop_job = stop_job
        self._clock = clock
        self._poke = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._ids: set[int] = set()  # cancelled ids heard of (NOTIFY, a local cancel)
        self._look = False  # something may have been cancelled: read the flags

    def notice(self, job_id: int | None) -> None:
        """A job (``job_id``), or any job (None), may have been cancelled. Thread-safe."""
        with self._lock:
            if job_id is None:
                self._look = True
            else:
                self._ids.add(job_id)
        self._poke.set()

    def stop(self) -> None:
        self._stopped.set()
        self._poke.set()

    def loop(self) -> None:
        while not self._stopped.is_set():
            poked = self._clock.wait(self._poke, FALLBACK)
            if self._stopped.is_set():
                return
            self._poke.clear()
            self.run_once(look=not poked)
            self._clock.wait(self._stopped, MIN_GAP)

    def run_once(self, *, look: bool = True) -> None:
        """Stop the running jobs heard of, and (``look``, or when told to) those flagged."""
        with self._lock:
            ids, self._ids = self._ids, set()
            look = look or self._look
            self._look = False
        running = self._running()
        if not running:
            return
        if look:
            # A failure is reported as StoreError by the store facade; FALLBACK reads again.
            with contextlib.suppress(Exception):
                ids.update(self._store.cancel_requested(self._node_id))
        for job_id in sorted(ids & running):
            self._stop_job(job_id)
