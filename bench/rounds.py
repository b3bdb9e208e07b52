"""Paired rounds: bgjobs and its raw baseline measured back to back on one fresh database per
round, bgjobs first in odd rounds and raw first in even ones. Whichever side runs second finds a
warm cache, a grown WAL or autovacuum at work; alternating spreads that over both sides."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

Db = TypeVar("Db")


@dataclass(frozen=True)
class Paired:
    """Per-round values of both sides, in round order."""

    ours: tuple[float, ...]
    base: tuple[float, ...]

    @property
    def ratios(self) -> tuple[float, ...]:
        """bgjobs / raw per round (the sides of one round share the database and the moment)."""
        return tuple(o / b for o, b in zip(self.ours, self.base, strict=True))


def paired(
    rounds: int,
    database: Callable[[], AbstractContextManager[Db]],
    ours: Callable[[Db], float],
    theirs: Callable[[Db], float],
) -> Paired:
    """Run both sides ``rounds`` times, each round on ``database()``, alternating the order."""
    mine: list[float] = []
    base: list[float] = []
    for number in range(1, rounds + 1):
        with database() as db:
            if number % 2:
                mine.append(ours(db))
                base.append(theirs(db))
            else:
                base.append(theirs(db))
                mine.append(ours(db))
    return Paired(tuple(mine), tuple(base))


def interleaved(rounds: int, ours: Callable[[int], None], theirs: Callable[[int], None]) -> None:
    """The same alternation for samples pooled over rounds: ``ours(round)``/``theirs(round)``
    each take their share of a sample, bgjobs first in odd rounds."""
    for number in range(1, rounds + 1):
        first, second = (ours, theirs) if number % 2 else (theirs, ours)
        first(number)
        second(number)
