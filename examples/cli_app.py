"""A small app for the `bgjobs` command line (used by tests/cli and docs/cli.md).

    BGJOBS_DATABASE_URL=sqlite:///bgjobs-demo.db bgjobs run examples/cli_app.py:bg
    bgjobs enqueue send_email --payload '{"to": "ada@example.com"}'

The database comes from BGJOBS_DATABASE_URL (default sqlite:///bgjobs-demo.db), so the
management commands and this app see the same jobs. Handlers are quick and deterministic:
``{"sleep": 0.5}`` makes a job take that long (reporting its progress as it goes),
``{"fail": true}`` makes it fail.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import bgjobs

DATABASE = os.environ.get("BGJOBS_DATABASE_URL", "sqlite:///bgjobs-demo.db")


def _work(job: bgjobs.Job) -> None:
    payload = job.payload if isinstance(job.payload, dict) else {}
    delay = payload.get("sleep", 0)
    if isinstance(delay, int | float) and delay > 0:
        steps = max(1, round(delay / 0.25))
        for step in range(1, steps + 1):
            time.sleep(delay / steps)
            job.set_progress(step / steps, f"slept {step * delay / steps:.2f} of {delay}s")
    if payload.get("fail"):
        raise RuntimeError(f"{job.name} was asked to fail (payload {job.raw_payload})")


def send_email(job: bgjobs.Job) -> None:
    _work(job)


def resize_image(job: bgjobs.Job) -> None:
    _work(job)


def cleanup(job: bgjobs.Job) -> None:
    _work(job)


def spec() -> bgjobs.BgJobsSpec:
    """The builder; `bgjobs run examples/cli_app.py:spec` works as well as `:bg`."""
    return (
        bgjobs.new(DATABASE)
        .with_queue(
            bgjobs.queue("default")
            .with_max_concurrent_jobs(4)
            .with_worker(bgjobs.worker("send_email", send_email).with_max_attempts(3))
        )
        .with_queue(
            bgjobs.queue("media")
            .with_max_concurrent_jobs(2)
            .with_worker(
                bgjobs.worker("resize_image", resize_image)
                .with_max_attempts(2)
                .with_backoff(bgjobs.constant(timedelta(seconds=1)))
            )
        )
        .with_scheduled_job(
            bgjobs.scheduled_job(bgjobs.worker("cleanup", cleanup), bgjobs.cron("*/10 * * * * *"))
        )
        .with_shutdown_grace(timedelta(seconds=10))
    )


bg = spec().build()
