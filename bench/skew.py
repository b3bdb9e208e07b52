"""Scheduler skew: an every-second scheduled job records (actual start - job.scheduled_at).

Each backend is a *lane*: a bgjobs runtime with the scheduled job, plus a raw baseline (a thread
that sleeps until its row is due, then claims it). All lanes run in the same time window, each
on its own phase of the second, so a 60 s measurement costs 60 s whatever the backends and no
two ticks fire together (1 tick/s per lane is far too light to disturb the others).

Every occurrence must run exactly once: a due time seen twice, or one missing from the grid,
fails the run. 60 ticks resolve a p95 but not a p99, so the "p99 <= 10 ms" target is judged on
the max (which bounds the p99) unless the p95 already misses it (see stats.judge_percentile).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import exactly_once
from common import BenchmarkFailed, Figure, say
from figures import latency
from raw import RawFactory, scheduled_ticks
from stats import Spread

import bgjobs
from bgjobs import BgJobs, Job, Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PERIOD = 1.0
TARGET_MS = 10.0
ON_TIME_MS = 500.0


@dataclass
class Lane:
    backend: str
    store: Store
    raw_factory: RawFactory
    ticks: list[tuple[datetime, float]] = field(default_factory=list)  # (due, skew ms)
    raw_skews: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def tick(self, job: Job) -> None:
        self.ticks.append((job.scheduled_at, (time.time() - job.scheduled_at.timestamp()) * 1000))

    def runtime(self, phase: float) -> BgJobs:
        interval = bgjobs.every(seconds=PERIOD, start=EPOCH + timedelta(seconds=phase))
        return (
            bgjobs.new(self.store)
            .with_scheduled_job(bgjobs.scheduled_job(bgjobs.worker("tick", self.tick), interval))
            .build()
        )

    def baseline(self, seconds: float, phase: float) -> threading.Thread:
        def run() -> None:
            try:
                self.raw_skews.extend(scheduled_ticks(self.raw_factory, seconds, phase))
            except BaseException as exc:
                self.errors.append(exc)

        return threading.Thread(target=run, name=f"raw-scheduler-{self.backend}", daemon=True)

    def check(self) -> None:
        """Each occurrence ran once: no due time twice, and none lost from the grid."""
        what = f"{self.backend} scheduled job"
        exactly_once.check(what, [due for due, _ in self.ticks], key="due")
        if lost := lost_occurrences(self.ticks):
            shown = ", ".join(str(due) for due in lost[:exactly_once.SHOWN])
            raise exactly_once.ExactlyOnceViolation(
                f"{what}: exactly-once violated: {len(lost)} occurrence(s) "
                f"never ran although the run before was on time ({shown})")

    def figures(self) -> list[Figure]:
        if self.errors:
            raise BenchmarkFailed(f"{self.backend}: the raw scheduler failed") from self.errors[0]
        if not self.ticks or not self.raw_skews:
            raise BenchmarkFailed(f"{self.backend}: too few runs (bgjobs {len(self.ticks)}, "
                                  f"raw {len(self.raw_skews)})")
        self.check()
        ours = Spread.of([skew for _, skew in self.ticks])
        say(f"   {self.backend}:")
        return latency(self.backend, f"scheduler skew (every {PERIOD:g} s)", ours,
                       Spread.of(self.raw_skews), {99: TARGET_MS})


def lost_occurrences(ticks: list[tuple[datetime, float]]) -> list[datetime]:
    """Due times missing between two runs although the earlier run started well within the
    period: only a run later than a whole period may coalesce the occurrences it overlapped."""
    period = timedelta(seconds=PERIOD)
    return [
        due + step * period
        for (due, skew), (following, _) in itertools.pairwise(sorted(ticks))
        if skew < ON_TIME_MS
        for step in range(1, round((following - due) / period))
    ]


def run_lanes(lanes: list[Lane], seconds: float) -> list[Figure]:
    """Run every lane for ``seconds`` at once; lane i fires bgjobs at i/4 s past each second
    and its raw baseline half a second later (so up to two lanes never collide)."""
    runtimes = [lane.runtime(i * 0.25) for i, lane in enumerate(lanes)]
    threads = [lane.baseline(seconds, 0.5 + i * 0.25) for i, lane in enumerate(lanes)]
    try:
        for runtime in runtimes:
            runtime.start()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
    finally:
        for runtime in runtimes:
            runtime.stop(timeout=5)
        for thread in threads:
            if thread.is_alive():
                thread.join(5)
    return [figure for lane in lanes for figure in lane.figures()]
