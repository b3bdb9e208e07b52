"""Scheduler skew: an every-second scheduled job records (actual start - job.scheduled_at).

Each backend is a *lane*: a bgjobs runtime with the scheduled job, plus a raw baseline (a thread
that sleeps until its row is due, then claims it). All lanes run in the same time window, each
on its own phase of the second, so a 60 s measurement costs 60 s whatever the backends and no
two ticks fire together (1 tick/s per lane is far too light to disturb the others).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from common import Figure, Spread, show
from raw import RawFactory, scheduled_ticks

import bgjobs
from bgjobs import BgJobs, Job, Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Lane:
    backend: str
    store: Store
    raw_factory: RawFactory
    skews: list[float] = field(default_factory=list)
    raw_skews: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def tick(self, job: Job) -> None:
        self.skews.append((time.time() - job.scheduled_at.timestamp()) * 1000)

    def runtime(self, phase: float) -> BgJobs:
        interval = bgjobs.every(seconds=1, start=EPOCH + timedelta(seconds=phase))
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

    def figures(self) -> list[Figure]:
        if self.errors:
            raise RuntimeError(f"{self.backend}: the raw scheduler failed") from self.errors[0]
        if not self.skews or not self.raw_skews:
            raise RuntimeError(f"{self.backend}: too few runs (bgjobs {len(self.skews)}, "
                               f"raw {len(self.raw_skews)})")
        ours, base = Spread.of(self.skews), Spread.of(self.raw_skews)
        print(f"   {self.backend} bgjobs {ours.describe()}\n"
              f"   {self.backend} raw    {base.describe()}")
        figures = [
            Figure(self.backend, "scheduler skew p50 (every 1 s)", "ms", ours.p50, base.p50,
                   False),
            Figure(self.backend, "scheduler skew p99 (every 1 s)", "ms", ours.p99, base.p99,
                   False, "<= 10 ms", ours.p99 <= 10),
            Figure(self.backend, "scheduler skew max (every 1 s)", "ms", ours.max, base.max,
                   False),
        ]
        for figure in figures:
            show(figure)
        return figures


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
