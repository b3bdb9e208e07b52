"""Progress reports from handlers, on a real runtime and database: stored, throttled, read back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs.adapters.base import Store
from bgjobs.events import JobProgress, JobSucceeded
from bgjobs.job import Progress


@pytest.fixture
def run_app(store: Store) -> Iterator[Callable[..., tuple[bgjobs.BgJobs, Recorder]]]:
    runtimes: list[bgjobs.BgJobs] = []

    def make(handler: Callable, *, attempts: int = 1) -> tuple[bgjobs.BgJobs, Recorder]:
        recorder = Recorder()
        bg = (
            bgjobs.new(store)
            .with_event_listener(recorder)
            .with_queue(
                bgjobs.queue("q").with_worker(
                    bgjobs.worker("work", handler).with_max_attempts(attempts)
                )
            )
            .build()
        )
        runtimes.append(bg)
        return bg.start(), recorder

    yield make
    for bg in runtimes:
        bg.stop(timeout=5)


def _progress(bg: bgjobs.BgJobs, job_id: int) -> Progress | None:
    job = bg.get_job(job_id)
    return None if job is None else job.progress


def test_progress_is_visible_while_running_and_the_last_report_is_kept(run_app: Callable) -> None:
    release = threading.Event()

    def work(job: bgjobs.Job) -> None:
        job.set_progress(0.5, "resized 5/10")
        assert release.wait(30)
        job.set_progress(1, "resized 10/10")

    bg, recorder = run_app(work)
    job = bg.enqueue("work")
    wait_until(lambda: _progress(bg, job.id) == Progress(0.5, "resized 5/10"), 10, "progress")
    running = bg.get_job(job.id)
    assert running is not None and running.state is bgjobs.JobState.RUNNING
    release.set()
    wait_until(lambda: recorder.of(JobSucceeded), 10, "the job to succeed")
    done = bg.get_job(job.id)
    assert done is not None and done.state is bgjobs.JobState.SUCCEEDED
    assert done.progress == Progress(1.0, "resized 10/10")
    reported = [(e.fraction, e.message) for e in recorder.of(JobProgress)]
    assert reported == [(0.5, "resized 5/10"), (1.0, "resized 10/10")]
    assert "JobProgress work#" in recorder.of(JobProgress)[0].describe()


def test_a_tight_loop_of_reports_is_throttled(run_app: Callable) -> None:
    reports = 0

    def work(job: bgjobs.Job) -> None:
        nonlocal reports
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            reports += 1
            job.set_progress(min(reports / 1e6, 1.0), f"step {reports}")

    bg, recorder = run_app(work)
    started = time.monotonic()
    job = bg.enqueue("work")
    wait_until(lambda: recorder.of(JobSucceeded), 20, "the job to succeed")
    elapsed = time.monotonic() - started
    written = recorder.of(JobProgress)
    assert reports > 1000
    # One write per second at most, plus the first report and the last one.
    assert 2 <= len(written) <= elapsed + 2, (len(written), elapsed)
    stored = bg.get_job(job.id)
    assert stored is not None and stored.progress is not None
    assert stored.progress.message == f"step {reports}"  # the very last report


def test_a_report_held_back_is_written_without_another_report(run_app: Callable) -> None:
    release = threading.Event()

    def work(job: bgjobs.Job) -> None:
        job.set_progress(0.1, "first")  # written at once
        job.set_progress(0.2, "second")  # within the interval: held back, then written
        assert release.wait(30)

    bg, _ = run_app(work)
    job = bg.enqueue("work")
    try:
        wait_until(lambda: _progress(bg, job.id) == Progress(0.2, "second"), 10, "the 2nd report")
        assert bg.get_job(job.id).state is bgjobs.JobState.RUNNING  # type: ignore[union-attr]
    finally:
        release.set()


def test_async_handlers_report_progress(run_app: Callable) -> None:
    async def work(job: bgjobs.Job) -> None:
        job.set_progress(0.25, "a quarter")
        job.set_progress(0.75, "three quarters")

    bg, recorder = run_app(work)
    job = bg.enqueue("work")
    wait_until(lambda: recorder.of(JobSucceeded), 10, "the job to succeed")
    assert _progress(bg, job.id) == Progress(0.75, "three quarters")


@pytest.mark.parametrize(
    ("fraction", "message", "problem"),
    [
        (40, "", "from 0 to 1 (a fraction, not a percentage), got 40"),
        (float("nan"), "", "from 0 to 1"),
        ("0.5", "", "must be a number from 0 to 1, got '0.5' (str)"),
        (True, "", "must be a number"),
        (0.5, "x" * 201, "201 characters; keep it to 200"),
        (0.5, "two\nlines", "line break or control character"),
        (0.5, 7, "message must be a str"),
    ],
)
def test_bad_progress_fails_the_attempt_with_a_clear_error(
    run_app: Callable, fraction: object, message: object, problem: str
) -> None:
    def work(job: bgjobs.Job) -> None:
        job.set_progress(fraction, message)  # type: ignore[arg-type]

    bg, recorder = run_app(work)
    job = bg.enqueue("work")
    wait_until(lambda: bg.get_job(job.id).state.is_finished, 10, "the job to fail")  # type: ignore[union-attr]
    failed = bg.get_job(job.id)
    assert failed is not None and failed.state is bgjobs.JobState.FAILED
    assert failed.errors[-1].type == "ConfigError"
    assert problem in failed.errors[-1].message
    assert failed.progress is None and not recorder.of(JobProgress)


def test_set_progress_outside_a_runtime_only_validates() -> None:
    now = datetime.now(UTC)
    job = bgjobs.Job(
        id=1, queue="q", name="work", raw_payload="null", state=bgjobs.JobState.RUNNING,
        priority=0, attempt=1, max_attempts=1, available_at=now, created_at=now, scheduled_at=now,
    )  # fmt: skip
    job.set_progress(0.5, "fine")  # a handler called directly, e.g. in a unit test
    with pytest.raises(bgjobs.ConfigError, match="from 0 to 1"):
        job.set_progress(1.5)
