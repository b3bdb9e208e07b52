"""Produce finished jobs with the real runtime (in-process) for the management tests."""

from __future__ import annotations

from tests.conftest import wait_until

import bgjobs
from bgjobs.job import Job


def boom(job: bgjobs.Job) -> None:
    raise ValueError(f"boom {job.payload}")


def build(database_url: str) -> bgjobs.BgJobs:
    return (
        bgjobs.new(database_url)
        .with_queue(
            bgjobs.queue("default")
            .with_worker(bgjobs.worker("ok", lambda job: None))
            .with_worker(bgjobs.worker("boom", boom).with_max_attempts(1))
        )
        .build()
    )


def process(database_url: str, *requests: tuple[str, bgjobs.payload.JSON]) -> list[Job]:
    """Run the given jobs to completion on a short-lived runtime; return them finished."""
    bg = build(database_url)
    bg.start()
    try:
        jobs = [bg.enqueue(name, payload) for name, payload in requests]

        def finished() -> list[Job] | None:
            now = [bg.store.get_job(job.id) for job in jobs]
            done = [job for job in now if job is not None and job.state.is_finished]
            return done if len(done) == len(jobs) else None

        wait_until(finished, what="jobs to finish")
        result = finished()
        assert result is not None
        return result
    finally:
        bg.stop()
        bg.store.close()
