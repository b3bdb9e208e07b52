"""Scheduler skew: an every-second scheduled job records (actual start - job.scheduled_at).

The raw baseline (a thread that sleeps until its row is due, then claims it) runs at the same
time on a half-second offset, so both share the run's wall time and never fire together.
"""

from __future__ import annotations

import threading
import time

import bgjobs
from bgjobs import Job, Store
from common import Spread
from raw import RawFactory, scheduled_ticks

BASELINE_PHASE = 0.5


def skew(store: Store, raw_factory: RawFactory, seconds: float) -> tuple[Spread, Spread]:
    """Run both for ``seconds``; return (bgjobs skew, raw skew) in ms."""
    skews: list[float] = []

    def tick(job: Job) -> None:
        skews.append((time.time() - job.scheduled_at.timestamp()) * 1000)

    bg = (
        bgjobs.new(store)
        .with_scheduled_job(bgjobs.scheduled_job(bgjobs.worker("tick", tick),
                                                 bgjobs.every(seconds=1)))
        .build()
    )
    raw_skews: list[float] = []
    baseline = threading.Thread(
        target=lambda: raw_skews.extend(scheduled_ticks(raw_factory, seconds, BASELINE_PHASE)),
        name="raw-scheduler", daemon=True,
    )
    bg.start()
    baseline.start()
    try:
        time.sleep(seconds)
    finally:
        bg.stop(timeout=5)
        baseline.join(5)
    if not skews or not raw_skews:
        raise RuntimeError(f"too few runs: bgjobs {len(skews)}, raw {len(raw_skews)}")
    return Spread.of(skews), Spread.of(raw_skews)
