"""In-process wake-up latency: enqueue -> handler start, one job at a time on an idle queue.

Both sides take ``time.perf_counter()`` just before the enqueue call and first thing in the
handler, so the figure includes the enqueue transaction itself.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable

from common import Spread
from raw import RawConsumer, RawFactory
from workloads import build, job_index

from bgjobs import Job, Store

WARMUP = 5
GAP_SECONDS = (0.005, 0.015)


class _Recorder:
    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.arrived = threading.Event()

    def record(self, index: int) -> None:
        self.started[index] = time.perf_counter()
        self.arrived.set()


def _measure(enqueue: Callable[[int], None], recorder: _Recorder, samples: int) -> list[float]:
    rng = random.Random(42)
    sent: dict[int, float] = {}
    for i in range(-WARMUP, samples):
        time.sleep(rng.uniform(*GAP_SECONDS))
        recorder.arrived.clear()
        sent[i] = time.perf_counter()
        enqueue(i)
        if not recorder.arrived.wait(5.0):
            raise RuntimeError(f"job {i} did not start within 5 s")
    return [(recorder.started[i] - sent[i]) * 1000 for i in range(samples)]


def bgjobs_latency(store: Store, samples: int) -> Spread:
    recorder = _Recorder()

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
    return Spread.of(values)


def raw_latency(factory: RawFactory, samples: int) -> Spread:
    recorder = _Recorder()
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
    return Spread.of(values)
