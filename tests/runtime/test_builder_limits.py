"""The builder's numbers have sane bounds, checked by build() (or the with_* call) with an error
that names the setting, instead of failing later (a thread that cannot start, an enqueue the
database refuses, an OverflowError deep in the runtime)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from tests.cli.conftest import invoke_cli

import bgjobs
from bgjobs.builder import MAX_ATTEMPTS, MAX_CONCURRENT_JOBS, MAX_DURATION
from bgjobs.errors import ConfigError


def noop(job: bgjobs.Job) -> None:
    return None


@pytest.fixture
def spec(tmp_path: Path) -> bgjobs.BgJobsSpec:
    return bgjobs.new(bgjobs.sqlite(tmp_path / "b.db"))


def with_queue(change: Callable[[bgjobs.QueueSpec], bgjobs.QueueSpec]) -> Callable[..., object]:
    return lambda s: s.with_queue(change(bgjobs.queue("q").with_worker(bgjobs.worker("a", noop))))


def with_worker(change: Callable[[bgjobs.WorkerSpec], bgjobs.WorkerSpec]) -> Callable[..., object]:
    return lambda s: s.with_queue(bgjobs.queue("q").with_worker(change(bgjobs.worker("a", noop))))


def scheduled(attempts: object) -> Callable[..., object]:
    return lambda s: s.with_scheduled_job(
        bgjobs.scheduled_job(bgjobs.worker("t", noop), bgjobs.every(seconds=1)).with_max_attempts(
            attempts  # type: ignore[arg-type]
        )
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (with_queue(lambda q: q.with_max_concurrent_jobs(2**70)), "max_concurrent_jobs"),
        (
            with_queue(lambda q: q.with_max_concurrent_jobs(MAX_CONCURRENT_JOBS + 1)),
            f"at most {MAX_CONCURRENT_JOBS:,}",
        ),
        (with_queue(lambda q: q.with_max_concurrent_jobs(True)), "max_concurrent_jobs"),
        (with_queue(lambda q: q.with_max_attempts(True)), "max_attempts"),
        (with_queue(lambda q: q.with_max_attempts(2**31)), f"at most {MAX_ATTEMPTS:,}"),
        (with_worker(lambda w: w.with_max_attempts(True)), "max_attempts"),
        (with_worker(lambda w: w.with_max_attempts(2**31)), "max_attempts"),
        (with_worker(lambda w: w.with_max_retries(2**31 - 1)), "max_attempts"),
        (scheduled(True), "max_attempts"),
        (scheduled(2**31), "max_attempts"),
        (
            lambda s: s.with_supervisor(True, 60).with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop))
            ),
            "max_restarts",
        ),
        (with_queue(lambda q: q.with_poll_interval(MAX_DURATION * 2)), "poll_interval"),
        (with_worker(lambda w: w.with_timeout(MAX_DURATION * 2)), "timeout"),
        (
            lambda s: s.with_shutdown_grace(MAX_DURATION * 2).with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop))
            ),
            "shutdown_grace",
        ),
    ],
)
def test_build_refuses_numbers_out_of_bounds(
    spec: bgjobs.BgJobsSpec, change: Callable[..., bgjobs.BgJobsSpec], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        change(spec).build()


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e20, True, "5"])
def test_durations_must_be_finite_numbers_of_seconds(value: object) -> None:
    with pytest.raises(ConfigError, match="finite number of seconds"):
        bgjobs.queue("q").with_poll_interval(value)  # type: ignore[arg-type]


def test_the_bounds_themselves_are_accepted(spec: bgjobs.BgJobsSpec) -> None:
    spec.with_queue(
        bgjobs.queue("q")
        .with_max_concurrent_jobs(MAX_CONCURRENT_JOBS)
        .with_max_attempts(MAX_ATTEMPTS)
        .with_poll_interval(MAX_DURATION)
        .with_worker(bgjobs.worker("a", noop).with_timeout(MAX_DURATION))
    ).with_shutdown_grace(timedelta(hours=1)).build()


def test_run_concurrency_out_of_bounds_is_a_clear_error(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        "import bgjobs\n"
        f"bg = bgjobs.new(bgjobs.sqlite({str(tmp_path / 'x.db')!r})).with_queue(\n"
        "    bgjobs.queue('q').with_worker(bgjobs.worker('w', lambda job: None))).build()\n"
    )
    result = invoke_cli("run", f"{app}:bg", "--no-live", "--concurrency", str(2**70))
    assert result.exit_code != 0
    assert "max_concurrent_jobs" in result.output and "at most" in result.output
    assert "Traceback" not in result.output
