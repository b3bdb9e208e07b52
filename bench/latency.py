"""In-process wake-up latency: enqueue -> handler start, one job at a time on an idle queue.

Both sides take ``time.perf_counter()`` just before the enqueue call and first thing in the
handler, so the figure includes the enqueue transaction itself. Every job must run exactly once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable

from common import BenchmarkFailed
from exactly_once import RunLedger
from raw import RawConsumer, RawFactory
from workloads import build, job_index

from bgjobs import Job, Store

WARMUP = 5
GAP_SECONDS = (0.005, 0.015)


class _Recorder:
    def __init__(self, what: str) -> None:
        self.ledger = RunLedger(what)
        self.started: dict[int, float] = {}
        self.arrived = threading.Event()

    def record(self, index: int) -> None:
        self.started.setdefault(index, time.perf_counter())
        self.ledger.record(index)
        self.arrived.set()


def indexes(samples: int) -> range:
    """The payload indexes of one measurement: negative ones are the unmeasured warm-up."""
    return range(-WARMUP, samples)


def _measure(enqueue: Callable[[int], None], recorder: _Recorder, samples: int) -> list[float]:
    rng = random.Random(42)
    sent: dict[int, float] = {}
    for i in indexes(samples):
        time.sleep(rng.uniform(*GAP_SECONDS))
        recorder.arrived.clear()
        sent[i] = time.perf_counter()
        enqueue(i)
        if not recorder.arrived.wait(5.0):
            raise BenchmarkFailed(f"{recorder.ledger.what}: job {i} did not start within 5 s")
    return [(recorder.started[i] - sent[i]) * 1000 for i in range(samples)]


def bgjobs_latency(store: Store, samples: int) -> list[float]:
    """Milliseconds per sample; checked for exactly-once after the runtime has stopped."""
    recorder = _Recorder("bgjobs wake-up latency")

    def handler(job: Job) -> None:
        recorder.record(job_index(job))

    def enqueue(i: int) -> None:
        bg.enqueue("latency", {"i": i})

    bg = build(store, concurrency=10, handler=handler, name="latency")
    bg.start()
    try:
        values = _measure(enqueue, recorder, samples)
    finally:
        bg.stop(timeout=5)
    recorder.ledger.check(indexes(samples))
    return values


def raw_latency(factory: RawFactory, samples: int) -> list[float]:
    recorder = _Recorder("raw wake-up latency")
    consumer = RawConsumer(
        factory, lambda payload: recorder.record(int(json.loads(payload)["i"])), batch=10
    )
    producer = factory()
    producer.reset()

    def enqueue(i: int) -> None:
        producer.insert_one(json.dumps({"i": i}))
        consumer.wake.set()

    consumer.start()
    try:
        values = _measure(enqueue, recorder, samples)
    finally:
        consumer.stop()
        producer.close()
    recorder.ledger.check(indexes(samples))
    return values
