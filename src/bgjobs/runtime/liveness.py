"""Which peers are dead, judged from their liveness locks (see ``Store.hold_node_lock``).

Every maintenance round asks the store which registered nodes' locks are free. A node counts
as dead once its lock has been seen free for the store's ``liveness_confirm``: at the first look
on SQLite (a live process never loses its flock), after a second on Postgres (a connection can
drop with a server restart, and a live node takes its lock back within a fraction of a second).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from bgjobs.runtime.clock import Clock


class PeerWatch:
    def __init__(self, confirm: timedelta, clock: Clock) -> None:
        self._confirm = confirm.total_seconds()
        self._clock = clock
        self._free_since: dict[str, float] = {}

    def dead(self, free: Iterable[str]) -> list[str]:
        """The nodes of ``free`` (this round's probe) seen free for long enough. A node seen
        held (absent from ``free``) starts over."""
        now = self._clock.monotonic()
        self._free_since = {node: self._free_since.get(node, now) for node in free}
        return sorted(
            node for node, since in self._free_since.items() if now - since >= self._confirm
        )

    def forget(self, nodes: Iterable[str] | None = None) -> None:
        """Drop what was seen of ``nodes`` (rescued), or of all after a failed probe: a free
        lock must be seen again, not inferred across a gap."""
        if nodes is None:
            self._free_since.clear()
            return
        for node in nodes:
            self._free_since.pop(node, None)
