"""Live nodes that define one scheduled job differently (a rolling deploy that changes it, or a
misconfigured node): warn, and let one definition win instead of interleaving both grids.

The newest live node's definition wins (latest start, then the larger node id): in a rolling
deploy that is the new code. A node whose definition loses *defers*: it neither registers that
schedule nor claims its runs, so only the winner's grid is used, until the winner stops. Each
node publishes its definitions in the node registry (``NodeInfo.schedules``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bgjobs.adapters.base import NodeInfo
from bgjobs.events import Event, ScheduleConflict


@dataclass(frozen=True)
class Conflict:
    schedule: str
    definitions: tuple[tuple[str, str], ...]  # (node id, definition), by node id
    winner: str  # the newest defining node's definition


def conflicts(nodes: Sequence[NodeInfo]) -> list[Conflict]:
    """Every scheduled job that ``nodes`` define in more than one way, by name."""
    defining: dict[str, list[NodeInfo]] = {}
    for node in nodes:
        for name in node.schedules:
            defining.setdefault(name, []).append(node)
    found = []
    for name, these in sorted(defining.items()):
        if len({node.schedules[name] for node in these}) < 2:
            continue
        newest = max(these, key=lambda node: (node.started_at, node.id))
        definitions = tuple(sorted((node.id, node.schedules[name]) for node in these))
        found.append(Conflict(name, definitions, newest.schedules[name]))
    return found


class ScheduleConflicts:
    """This node's view: which of its scheduled jobs defer to a newer node's definition, and a
    ``ScheduleConflict`` event the first time each conflict is seen."""

    def __init__(
        self,
        own: Mapping[str, str],
        emit: Callable[[Event], None],
        now: Callable[[], datetime],
    ) -> None:
        self._own = own  # this node's scheduled jobs: name -> definition
        self._emit = emit
        self._now = now
        self._reported: set[Conflict] = set()
        self.deferred: frozenset[str] = frozenset()

    def update(self, live: Sequence[NodeInfo]) -> None:
        """Re-decide from the live nodes (this one included)."""
        found = [c for c in conflicts(live) if c.schedule in self._own]
        self.deferred = frozenset(c.schedule for c in found if self._own[c.schedule] != c.winner)
        for conflict in found:
            if conflict not in self._reported:
                self._emit(
                    ScheduleConflict(
                        at=self._now(),
                        schedule=conflict.schedule,
                        definitions=conflict.definitions,
                        winner=conflict.winner,
                    )
                )
        self._reported = set(found)  # a conflict that ends and comes back is reported again
