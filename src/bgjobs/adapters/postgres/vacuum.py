"""Vacuuming the hot table when autovacuum falls behind.

Every job leaves two dead rows in the hot table (the version its claim replaced, and the row
deleted when it finished), and a dead entry at the front of the claim index. Until a vacuum
removes them, every claim steps over all the dead entries before the first live one: a backlog
of a million jobs drained at 12.8k jobs/s in its first tenth and 1.9k/s in its last, with two
million dead rows (autovacuum was off; where it is on, it comes late on a big table and runs
throttled, and between its passes the same happens).

So the runtime asks the store every few seconds (``Store.upkeep``), and once the dead rows pass
``max(MIN_DEAD, DEAD_FRACTION * live)`` bgjobs vacuums the table itself: a plain VACUUM (never
FULL, which would lock out every claim) with ANALYZE (a server without autovacuum has no
autoanalyze either, and without statistics the planner may sort the whole backlog per claim),
outside any transaction (VACUUM cannot run in one), on a connection of its own, from one node at
a time (a session advisory lock; a node that finds it taken skips its turn). Where autovacuum
keeps up, the dead rows never reach the threshold and bgjobs never vacuums.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from typing import Any

from psycopg import Connection

from bgjobs.adapters.postgres.connections import CANCEL_TIMEOUT, Connections
from bgjobs.adapters.postgres.queries import Queries
from bgjobs.adapters.postgres.schema import lock_key
from bgjobs.adapters.rows import scalar

log = logging.getLogger("bgjobs")

# Vacuum once the dead rows reach this many, and this share of the live ones: a vacuum scans
# the whole table and its indexes, so a big backlog is vacuumed less often.
MIN_DEAD = 20_000
DEAD_FRACTION = 0.1


def worth_vacuuming(live: int, dead: int) -> bool:
    """Whether the dead rows cost claims more than a vacuum costs (it scans the table)."""
    return dead >= max(MIN_DEAD, DEAD_FRACTION * live)


class HotTableVacuum:
    def __init__(self, connections: Connections, queries: Queries, schema: str) -> None:
        self._connections = connections
        self._q = queries
        self._schema = schema
        self._running: Connection[Any] | None = None
        self._lock = threading.Lock()
        self._closed = False

    def run_if_needed(self) -> bool:
        """Vacuum if the dead rows piled up and no other node is at it; True if this did."""
        with self._connections.connection() as conn:
            row = conn.execute(self._q.dead_rows, (self._schema,)).fetchone()
        live, dead = row if row is not None else (0, 0)
        if not worth_vacuuming(live, dead):
            return False
        conn = self._connections.connect()
        try:
            with self._lock:
                if self._closed:
                    return False
                self._running = conn
            key = lock_key(self._schema, "vacuum")
            if not scalar(conn.execute(self._q.vacuum_try_lock, (key,)).fetchone()):
                return False  # another node is vacuuming
            started = time.monotonic()
            conn.execute(self._q.vacuum)
            log.info(
                "bgjobs: vacuumed %s.bgjobs_jobs (%d dead rows, %d live) in %.1fs",
                self._schema,
                dead,
                live,
                time.monotonic() - started,
            )
            return True
        finally:
            with self._lock:
                self._running = None
            conn.close()  # ends the session, and with it the advisory lock

    def close(self) -> None:
        """Cancel a vacuum in progress (it is safe to stop one part-way) and refuse new ones."""
        with self._lock:
            self._closed = True
            conn = self._running
        if conn is not None:
            with suppress(Exception):
                conn.cancel_safe(timeout=CANCEL_TIMEOUT)
