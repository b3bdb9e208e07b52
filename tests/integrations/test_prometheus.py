"""Prometheus metrics with the real prometheus_client: counted from a real runtime's events, and
the queue gauges read from the real database (tests/cli/test_run_metrics.py scrapes
`bgjobs run --metrics-port` over HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import wait_until

import bgjobs
from bgjobs.adapters.base import Store
from bgjobs.integrations import prometheus

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition text, keyed by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(registry: CollectorRegistry) -> Samples:
    return parse(generate_latest(registry).decode())


SNOOZED: set[tuple[str, int]] = set()  # (database, job id): snoozed once already


def flaky(job: bgjobs.Job) -> None:
    payload = job.payload if isinstance(job.payload, dict) else {}
    if payload.get("fail"):
        raise RuntimeError("asked to fail")
    if payload.get("snooze") and (payload["snooze"], job.id) not in SNOOZED:
        SNOOZED.add((payload["snooze"], job.id))
        raise bgjobs.Snooze(timedelta(milliseconds=10))


@pytest.fixture
def app(store: Store) -> Iterator[Callable[..., tuple[bgjobs.BgJobs, CollectorRegistry]]]:
    made: list[bgjobs.BgJobs] = []

    def make(stats_interval: float = 0.0) -> tuple[bgjobs.BgJobs, CollectorRegistry]:
        registry = CollectorRegistry()
        spec = (
            bgjobs.new(store)
            .with_queue(
                bgjobs.queue("default").with_worker(
                    bgjobs.worker("flaky", flaky)
                    .with_max_attempts(2)
                    .with_backoff(bgjobs.constant(timedelta(milliseconds=10)))
                )
            )
            .with_scheduled_job(
                bgjobs.scheduled_job(
                    bgjobs.worker("tick", lambda job: None), bgjobs.every(seconds=1)
                )
            )
        )
        bg = prometheus.instrument(spec, registry=registry, stats_interval=stats_interval).build()
        made.append(bg)
        return bg, registry

    yield make
    for bg in made:
        bg.stop(timeout=5)


def test_events_are_counted_and_timed(app: Callable) -> None:
    bg, registry = app()
    bg.start()
    for payload in ({}, {}, {"fail": True}, {"snooze": str(uuid.uuid4())}):
        bg.enqueue("flaky", payload)
    waiting = bg.enqueue("flaky", {}, delay=timedelta(hours=1))
    bg.cancel(waiting.id)

    def outcome(name: str) -> float:
        return value(scrape(registry), "bgjobs_jobs_total", queue="default", worker="flaky",
                     outcome=name)  # fmt: skip

    wait_until(lambda: outcome("succeeded") == 3 and outcome("failed") == 1, 20, "the outcomes")
    samples = scrape(registry)
    job = {"queue": "default", "worker": "flaky"}
    assert value(samples, "bgjobs_jobs_enqueued_total", **job) == 5
    assert outcome("retried") == 1 and outcome("snoozed") == 1 and outcome("cancelled") == 1
    # every attempt that ran: 3 successes, 2 failed attempts, 1 snooze
    assert value(samples, "bgjobs_job_run_seconds_count", **job) == 6
    assert value(samples, "bgjobs_job_queue_wait_seconds_count", **job) == 6
    assert value(samples, "bgjobs_job_run_seconds_bucket", **job, le="+Inf") == 6
    wait_until(
        lambda: value(scrape(registry), "bgjobs_schedule_lateness_seconds_count", schedule="tick"),
        10,
        "a scheduled run",
    )
    late = scrape(registry)
    # a run of an every-second schedule starts within a second of its due time
    assert value(late, "bgjobs_schedule_lateness_seconds_bucket", schedule="tick", le="1.0") >= 1


def test_queue_gauges_come_from_the_database_at_most_once_per_interval(
    app: Callable, store: Store
) -> None:
    bg, registry = app(stats_interval=3600)  # never started: the gauges need no runtime
    bg.enqueue("flaky", {})
    bg.enqueue("flaky", {}, delay=timedelta(hours=1))
    samples = scrape(registry)
    gauge = "bgjobs_queue_jobs"
    assert value(samples, gauge, queue="default", state="available") == 1
    assert value(samples, gauge, queue="default", state="scheduled") == 1
    assert value(samples, gauge, queue="default", state="running") == 0
    assert value(samples, gauge, queue="default", state="failed") == 0
    bg.enqueue("flaky", {})
    again = scrape(registry)  # within the interval: the cached read
    assert value(again, gauge, queue="default", state="available") == 1
    fresh = CollectorRegistry()
    prometheus.instrument(bg, registry=fresh, stats_interval=0)
    assert value(scrape(fresh), gauge, queue="default", state="available") == 2
    assert value(scrape(fresh), "bgjobs_queue_stats_errors_total") == 0


def test_instrumenting_twice_counts_once(store: Store) -> None:
    registry = CollectorRegistry()
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue("default").with_worker(bgjobs.worker("flaky", flaky))
    )
    spec = prometheus.instrument(prometheus.instrument(spec, registry=registry), registry=registry)
    bg = prometheus.instrument(spec.build(), registry=registry)
    bg.enqueue("flaky", {})
    samples = scrape(registry)
    assert value(samples, "bgjobs_jobs_enqueued_total", queue="default", worker="flaky") == 1
    assert prometheus.metrics_of(bg) is not None
