"""The demo app behind `./dev demo` (= `bgjobs run examples/demo.py:bg`).

It keeps itself busy: a scheduled producer enqueues a handful of jobs every second, some of which
fail and retry, and image resizes report their progress, so the live view has something to show.
Uses SQLite (bgjobs-demo.db) unless BGJOBS_DATABASE_URL says otherwise.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import timedelta

import bgjobs

DATABASE = os.environ.get("BGJOBS_DATABASE_URL", "sqlite:///bgjobs-demo.db")


def send_email(job: bgjobs.Job) -> None:
    time.sleep(random.uniform(0.05, 0.4))


def resize_image(job: bgjobs.Job) -> None:
    sizes = random.randint(3, 8)
    for done in range(1, sizes + 1):
        time.sleep(random.uniform(0.1, 0.5))
        job.set_progress(done / sizes, f"resized {done}/{sizes} sizes")
    if random.random() < 0.15:
        raise OSError(f"image {job.payload} could not be read (demo failure; it will retry)")


async def call_webhook(job: bgjobs.Job) -> None:
    await asyncio.sleep(random.uniform(0.01, 0.2))


def produce(job: bgjobs.Job) -> None:
    bg.enqueue_many(
        [("send_email", {"to": f"user{n}@example.com"}) for n in range(random.randint(1, 6))]
        + [("resize_image", {"image": n}) for n in range(random.randint(0, 3))]
        + [("call_webhook", {"hook": n}) for n in range(random.randint(0, 4))]
    )


def nightly_report(job: bgjobs.Job) -> None:
    time.sleep(0.1)


bg = (
    bgjobs.new(DATABASE)
    .with_queue(
        bgjobs.queue("default")
        .with_max_concurrent_jobs(8)
        .with_worker(bgjobs.worker("send_email", send_email))
        .with_worker(bgjobs.worker("call_webhook", call_webhook))
    )
    .with_queue(
        bgjobs.queue("media")
        .with_max_concurrent_jobs(4)
        .with_worker(
            bgjobs.worker("resize_image", resize_image)
            .with_max_attempts(3)
            .with_backoff(bgjobs.constant(timedelta(seconds=2)))
        )
    )
    .with_scheduled_job(
        bgjobs.scheduled_job(bgjobs.worker("produce", produce), bgjobs.every(seconds=1))
    )
    .with_scheduled_job(
        bgjobs.scheduled_job(
            bgjobs.worker("nightly_report", nightly_report), bgjobs.cron("0 3 * * *")
        )
    )
    .build()
)

if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    bg.add_listener(bgjobs.logging_listener())
    bg.run()
