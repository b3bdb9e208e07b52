"""build() validates everything before anything runs, with errors that name the fix."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import bgjobs
from bgjobs.errors import ConfigError, ScheduleError


def noop(job: bgjobs.Job) -> None:
    pass


@pytest.fixture
def spec(tmp_path: Path) -> bgjobs.BgJobsSpec:
    return bgjobs.new(bgjobs.sqlite(tmp_path / "b.db"))


def test_builder_is_immutable(spec: bgjobs.BgJobsSpec) -> None:
    q = bgjobs.queue("default")
    q2 = q.with_worker(bgjobs.worker("a", noop))
    assert q.workers == () and len(q2.workers) == 1
    s2 = spec.with_queue(q2)
    assert spec.queues == () and s2.queues == (q2,)


def test_build_touches_nothing(tmp_path: Path) -> None:
    db = tmp_path / "untouched.db"
    bgjobs.new(bgjobs.sqlite(db)).with_queue(
        bgjobs.queue("q").with_worker(bgjobs.worker("a", noop))
    ).build()
    assert not db.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s, "nothing to run"),
        (lambda s: s.with_queue(bgjobs.queue("q")), "has no workers"),
        (
            lambda s: s.with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop))
            ).with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("b", noop))),
            "defined twice",
        ),
        (
            lambda s: s.with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop))
            ).with_queue(bgjobs.queue("r").with_worker(bgjobs.worker("a", noop))),
            "registered twice",
        ),
        (
            lambda s: s.with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop)).with_max_concurrent_jobs(0)
            ),
            "max_concurrent_jobs",
        ),
        (
            lambda s: s.with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop)).with_poll_interval(0)
            ),
            "poll_interval",
        ),
        (
            lambda s: s.with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop).with_max_attempts(0))
            ),
            "max_attempts",
        ),
        (
            lambda s: s.with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop).with_timeout(-1))
            ),
            "timeout",
        ),
        (
            lambda s: s.with_queue(bgjobs.queue("bad name").with_worker(bgjobs.worker("a", noop))),
            "invalid",
        ),
        (
            lambda s: s.with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("a", 42))),  # type: ignore[arg-type]
            "not callable",
        ),
        (
            lambda s: s.with_scheduled_job(
                bgjobs.scheduled_job(bgjobs.worker("t", noop), bgjobs.every(seconds=1)).with_queue(
                    "nope"
                )
            ),
            "not defined",
        ),
        (
            lambda s: s.with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("t", noop))
            ).with_scheduled_job(
                bgjobs.scheduled_job(bgjobs.worker("t", noop), bgjobs.every(seconds=1))
            ),
            "registered twice",
        ),
        (
            lambda s: s.with_heartbeat(10, 15).with_queue(
                bgjobs.queue("q").with_worker(bgjobs.worker("a", noop))
            ),
            "twice the heartbeat",
        ),
    ],
)
def test_build_rejects_bad_specs(spec: bgjobs.BgJobsSpec, change: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        change(spec).build()  # type: ignore[operator]


def test_bad_schedules_fail_before_build() -> None:
    with pytest.raises(ScheduleError, match="minute"):
        bgjobs.cron("60 * * * *")
    with pytest.raises(ScheduleError, match="hour"):
        bgjobs.schedule().on_hour(24)
    with pytest.raises(ScheduleError):
        bgjobs.every(seconds=0)


def test_backoff_validation() -> None:
    with pytest.raises(ConfigError, match="factor"):
        bgjobs.exponential(factor=0.5)
    delays = [bgjobs.exponential(base=timedelta(seconds=1), jitter=0).delay(n) for n in (1, 2, 3)]
    assert delays == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4)]
    capped = bgjobs.exponential(cap=timedelta(seconds=5), jitter=0).delay(1000)
    assert capped == timedelta(seconds=5)
