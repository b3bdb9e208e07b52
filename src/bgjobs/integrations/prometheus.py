"""Prometheus metrics (``pip install bgjobs[prometheus]``), built on bgjobs' events.

    from bgjobs.integrations import prometheus

    bg = prometheus.instrument(spec).build()     # or prometheus.instrument(bg) after build()
    prometheus.start_http_server(bg, 9100)       # or serve prometheus_client's registry yourself

``bgjobs run APP --metrics-port 9100`` does both. What this process saw (counters, histograms):

- ``bgjobs_jobs_enqueued_total{queue,worker}``: jobs this process enqueued;
- ``bgjobs_jobs_total{queue,worker,outcome}``: outcomes recorded here: ``succeeded``,
  ``retried`` (the attempt failed, it runs again), ``failed`` (for good: out of attempts,
  discarded, poison, or rescued with no attempt left), ``snoozed``, ``cancelled``, ``rescued``
  (its node died; back in the queue), ``released`` (handed back at shutdown);
- ``bgjobs_job_timeouts_total{queue,worker}``: runs stopped by their worker's timeout (each also
  counts as ``retried`` or ``failed``);
- ``bgjobs_job_run_seconds{queue,worker}``: claim to recorded outcome, per attempt;
- ``bgjobs_job_queue_wait_seconds{queue,worker}``: due (``available_at``) to the handler's start;
- ``bgjobs_schedule_lateness_seconds{schedule}``: a scheduled run's start minus its due time
  (first attempts only).

What the database holds (gauges, the same on every node: aggregate with ``max``, not ``sum``):
``bgjobs_queue_jobs{queue,state}`` with ``state`` in available, scheduled, running, failed, read
at scrape time with the store's indexed ``queue_stats`` and cached for ``stats_interval``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client import start_http_server as serve_registry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bgjobs.adapters.base import QueueStats, Store
from bgjobs.events import (
    Event,
    JobCancelled,
    JobDiscarded,
    JobEnqueued,
    JobEvent,
    JobFailed,
    JobReleased,
    JobRescued,
    JobSnoozed,
    JobStarted,
    JobSucceeded,
    JobTimedOut,
)

if TYPE_CHECKING:
    from bgjobs.builder import RuntimeSpec
    from bgjobs.runtime.app import BgJobs

log = logging.getLogger("bgjobs")
Target = TypeVar("Target", bound="RuntimeSpec | BgJobs")

RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60)
STATES = ("available", "scheduled", "running", "failed")
_OUTCOMES: dict[type[Event], str] = {
    JobSucceeded: "succeeded",
    JobFailed: "retried",
    JobDiscarded: "failed",
    JobSnoozed: "snoozed",
    JobCancelled: "cancelled",
    JobRescued: "rescued",
    JobReleased: "released",
}
_RAN = (JobSucceeded, JobFailed, JobDiscarded, JobSnoozed)  # outcomes of a handler's run
_instrumented: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()


class Metrics:
    """The metric families in one registry, and the event listener that feeds them."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        by_job = ("queue", "worker")
        self.enqueued = Counter(
            "bgjobs_jobs_enqueued", "Jobs enqueued by this process.", by_job, registry=registry
        )
        self.outcomes = Counter(
            "bgjobs_jobs",
            "Job outcomes recorded by this process, by queue, worker and outcome.",
            (*by_job, "outcome"),
            registry=registry,
        )
        self.timeouts = Counter(
            "bgjobs_job_timeouts", "Runs stopped by their timeout.", by_job, registry=registry
        )
        self.run_seconds = Histogram(
            "bgjobs_job_run_seconds",
            "From claim to the attempt's recorded outcome.",
            by_job,
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.wait_seconds = Histogram(
            "bgjobs_job_queue_wait_seconds",
            "From when a job was due (available_at) to its handler's start.",
            by_job,
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.lateness = Histogram(
            "bgjobs_schedule_lateness_seconds",
            "A scheduled run's start minus its due time (first attempts).",
            ("schedule",),
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self._collector: QueueStatsCollector | None = None
        self._lock = threading.Lock()
        # Labelled children, found once per (queue, worker): .labels() costs a few µs per call.
        self._series: dict[tuple[str, str], _Series] = {}

    def __call__(self, event: Event) -> None:
        """The listener: count and time what happened (cheap; runs on bgjobs' threads)."""
        if not isinstance(event, JobEvent):
            return
        job = event.job
        series = self._series.get((job.queue, job.name)) or self._new_series(job.queue, job.name)
        if isinstance(event, JobStarted):
            series.wait.observe(_seconds(event.at - job.available_at))
            if job.schedule is not None and job.attempt == 1:
                lateness = _seconds(event.at - job.scheduled_at)
                self.lateness.labels(job.schedule).observe(lateness)
        elif isinstance(event, JobEnqueued):
            series.enqueued.inc()
        elif isinstance(event, JobTimedOut):
            series.timeouts.inc()
        elif (outcome := _OUTCOMES.get(type(event))) is not None:
            series.outcome(outcome).inc()
            if isinstance(event, _RAN) and not _rescued(event) and job.reserved_at is not None:
                series.run.observe(_seconds(event.at - job.reserved_at))

    def _new_series(self, queue: str, worker: str) -> _Series:
        with self._lock:
            found = self._series.get((queue, worker))
            if found is None:
                found = self._series[(queue, worker)] = _Series(self, queue, worker)
            return found

    def watch(self, store: Store, *, stats_interval: timedelta | float = 5.0) -> None:
        """Export ``bgjobs_queue_jobs`` from ``store`` at scrape time. One database per
        registry: watching another store (a runtime built again) replaces the previous one."""
        interval = stats_interval
        seconds = interval.total_seconds() if isinstance(interval, timedelta) else interval
        with self._lock:
            if self._collector is None:
                self._collector = QueueStatsCollector(store, seconds)
                self.registry.register(self._collector)
            else:
                self._collector.use(store, seconds)


class _Series:
    """One (queue, worker)'s labelled children of each metric family."""

    def __init__(self, metrics: Metrics, queue: str, worker: str) -> None:
        self.enqueued = metrics.enqueued.labels(queue, worker)
        self.timeouts = metrics.timeouts.labels(queue, worker)
        self.wait = metrics.wait_seconds.labels(queue, worker)
        self.run = metrics.run_seconds.labels(queue, worker)
        self._outcomes = metrics.outcomes
        self._labels = (queue, worker)
        self._by_outcome: dict[str, Any] = {}

    def outcome(self, outcome: str) -> Any:
        child = self._by_outcome.get(outcome)
        if child is None:
            child = self._by_outcome[outcome] = self._outcomes.labels(*self._labels, outcome)
        return child


class QueueStatsCollector(Collector):
    """``bgjobs_queue_jobs`` from the store's ``queue_stats`` (indexed counts), read through the
    store's monitoring connection at most once per ``min_interval`` however often it is scraped.
    A failed read is counted and leaves the gauges out of that scrape (stale counts would lie)."""

    def __init__(self, store: Store, min_interval: float = 5.0) -> None:
        self._store = store
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._monitor: Store | None = None
        self._owns_monitor = False
        self._stats: list[QueueStats] | None = None
        self._read_at = float("-inf")
        self._errors = 0

    def use(self, store: Store, min_interval: float) -> None:
        """Read from ``store`` from now on."""
        with self._lock:
            if store is self._store:
                return
            self._close_monitor()
            self._store, self._min_interval = store, min_interval
            self._stats, self._read_at = None, float("-inf")

    def _close_monitor(self) -> None:
        if self._monitor is not None and self._owns_monitor:
            self._monitor.close()
        self._monitor, self._owns_monitor = None, False

    def describe(self) -> Iterator[Metric]:
        # Without this, registering would call collect() and read the database at import time.
        yield GaugeMetricFamily("bgjobs_queue_jobs", "", labels=("queue", "state"))

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        yield CounterMetricFamily(
            "bgjobs_queue_stats_errors",
            "Failed reads of the queue counts for bgjobs_queue_jobs.",
            value=self._errors,
        )
        if stats is None:
            return
        jobs = GaugeMetricFamily(
            "bgjobs_queue_jobs",
            "Jobs in the database by queue and state (all nodes; read at scrape time).",
            labels=("queue", "state"),
        )
        for queue in stats:
            counts = (queue.available, queue.scheduled, queue.running, queue.failed)
            for state, count in zip(STATES, counts, strict=True):
                jobs.add_metric((queue.queue, state), count)
        yield jobs

    def _read(self) -> list[QueueStats] | None:
        with self._lock:
            if time.monotonic() - self._read_at < self._min_interval:
                return self._stats
            self._read_at = time.monotonic()
            try:
                if self._monitor is None:
                    self._monitor, self._owns_monitor = self._store.monitor()
                    self._monitor.open()
                self._stats = self._monitor.queue_stats(timedelta(0))
            except Exception as exc:  # the database may be down: the scrape still answers
                self._errors += 1
                self._stats = None
                log.warning("bgjobs: reading queue counts for /metrics failed: %r", exc)
            return self._stats


def instrument(
    target: Target,
    *,
    registry: CollectorRegistry | None = None,
    stats_interval: timedelta | float = 5.0,
) -> Target:
    """Count and time ``target``'s events and export its database's queue counts.

    ``target`` is a builder (returns a new builder with the listener) or a built ``BgJobs``
    (the listener is added to it, and it is returned). ``registry`` defaults to
    prometheus_client's global one; pass your own ``CollectorRegistry`` to keep bgjobs' metrics
    apart. Instrumenting a runtime twice is a no-op."""
    from bgjobs.runtime.app import BgJobs

    metrics = _metrics_for(registry or REGISTRY)
    metrics.watch(target.store, stats_interval=stats_interval)
    if isinstance(target, BgJobs):
        if _instrumented.get(target) is None and metrics not in target.spec.listeners:
            target.add_listener(metrics)
            _instrumented[target] = metrics
        return target
    if metrics in target.listeners:
        return target
    return target.with_event_listener(metrics)


def metrics_of(bg: BgJobs) -> Metrics | None:
    """The Metrics instrumenting ``bg``, if any (given to its builder, or added after build)."""
    found = _instrumented.get(bg)
    if found is not None:
        return found
    return next((m for m in bg.spec.listeners if isinstance(m, Metrics)), None)


def start_http_server(bg: BgJobs, port: int, host: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` for ``bg`` on ``host:port`` from a daemon thread (instrumenting it
    first if it is not yet). Returns prometheus_client's server, whose ``shutdown()`` stops it."""
    metrics = metrics_of(bg)
    if metrics is None:
        instrument(bg)
        metrics = metrics_of(bg)
        assert metrics is not None
    server, _thread = serve_registry(port, addr=host, registry=metrics.registry)
    return server


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _metrics_for(registry: CollectorRegistry) -> Metrics:
    """One Metrics per registry: its families can be registered only once."""
    with _registry_lock:
        metrics = _by_registry.get(registry)
        if metrics is None:
            metrics = _by_registry[registry] = Metrics(registry)
        return metrics


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


def _rescued(event: Event) -> bool:
    """A job failed by the rescuer (its node died): no run time to observe."""
    return isinstance(event, JobDiscarded) and event.error.type == "JobRescued"


__all__ = [
    "Metrics",
    "QueueStatsCollector",
    "instrument",
    "metrics_of",
    "start_http_server",
]
