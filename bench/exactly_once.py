"""Exactly-once bookkeeping: every benchmark that runs jobs records each run by its key (a job's
payload index, or a scheduled run's due time) and checks the record once the runtime has
stopped. A job that ran twice, or never, stops the suite: a rate that counts it is not a figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable

from common import BenchmarkFailed

SHOWN = 5  # keys named per kind of problem; the rest are counted


class ExactlyOnceViolation(BenchmarkFailed):
    """Some job ran more than once, never ran, or was not one the benchmark enqueued."""


def problems(runs: Iterable[Hashable], expected: Iterable[Hashable] | None = None,
             key: str = "index") -> list[str]:
    """What is wrong with ``runs`` (one key per run) against the keys that should each have
    run once; ``expected=None`` checks for duplicates only. Empty when all is well."""
    counts = Counter(runs)
    found = []
    twice = sorted((k for k, n in counts.items() if n > 1), key=repr)
    if twice:
        found.append(f"{_jobs(twice)} ran more than once "
                     f"({_names(twice, lambda k: f'{key} {k}: {counts[k]} runs')})")
    if expected is not None:
        wanted = set(expected)
        never = sorted(wanted - counts.keys(), key=repr)
        strays = sorted(counts.keys() - wanted, key=repr)
        if never:
            found.append(f"{_jobs(never)} never ran ({key} {_names(never, str)})")
        if strays:
            found.append(f"{_jobs(strays)} ran that were never enqueued "
                         f"({key} {_names(strays, str)})")
    return found


def check(what: str, runs: Iterable[Hashable], expected: Iterable[Hashable] | None = None,
          key: str = "index") -> None:
    """Raise :class:`ExactlyOnceViolation` naming ``what`` unless every expected key ran once."""
    found = problems(runs, expected, key)
    if found:
        raise ExactlyOnceViolation(f"{what}: exactly-once violated: {'; '.join(found)}")


def _jobs(keys: list[Hashable]) -> str:
    return f"{len(keys)} job{'s' if len(keys) != 1 else ''}"


def _names(keys: list[Hashable], name: Callable[[Hashable], str]) -> str:
    shown = ", ".join(name(k) for k in keys[:SHOWN])
    return shown + (f", … {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")


class RunLedger:
    """Where handlers record their runs. ``list.append`` is atomic, so handler threads need no
    lock and the per-job cost stays a few hundred nanoseconds."""

    def __init__(self, what: str, key: str = "index") -> None:
        self.what = what
        self.key = key
        self.runs: list[Hashable] = []

    def record(self, key: Hashable) -> None:
        self.runs.append(key)

    def extend(self, keys: Iterable[Hashable]) -> None:
        self.runs.extend(keys)

    def check(self, expected: Iterable[Hashable] | None = None) -> None:
        check(self.what, self.runs, expected, self.key)
