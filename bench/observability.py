"""What the integrations cost: the drain and enqueue benchmarks with OpenTelemetry and Prometheus
off and on, on the same machine in the same run.

    python bench/observability.py [--backend sqlite|postgres|all] [--jobs N] [--rounds R]

Variants: ``off`` (plain bgjobs), ``otel`` (the SDK with a BatchSpanProcessor into an in-memory
exporter: every span is built and handed over, nothing leaves the process), ``prometheus``
(the event listener into a private registry, scraped once a second), ``both``. Rounds are
interleaved, each on a fresh database, and the median is reported: jobs/s, and this process'
CPU time per job, which other work on a shared machine disturbs far less than the rate (the
integrations' cost is all in this process).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import postgres_bench
import sqlite_bench
import workloads
from common import Stopwatch, say
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

import bgjobs
from bgjobs import BgJobs, BgJobsSpec, JobRequest, Store
from bgjobs.integrations import otel, prometheus

VARIANTS = ("off", "otel", "prometheus", "both")
Instrument = Callable[[BgJobsSpec], BgJobsSpec]


def instrumenter(variant: str) -> tuple[Instrument, Callable[[], None]]:
    """How to instrument a spec for ``variant``, and what to do once the run is over."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    registry = CollectorRegistry()
    scraping = threading.Event()

    def scrape_every_second() -> None:
        while not scraping.wait(1.0):
            generate_latest(registry)

    def instrument(spec: BgJobsSpec) -> BgJobsSpec:
        if variant in ("otel", "both"):
            spec = otel.instrument(spec, tracer_provider=provider)
        if variant in ("prometheus", "both"):
            spec = prometheus.instrument(spec, registry=registry)
            threading.Thread(target=scrape_every_second, daemon=True).start()
        return spec

    def done() -> None:
        scraping.set()
        provider.shutdown()

    return instrument, done


def build(store: Store, instrument: Instrument, counter: workloads.SuccessCounter) -> BgJobs:
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue(workloads.QUEUE)
        .with_max_concurrent_jobs(32)
        .with_worker(bgjobs.worker("noop", workloads.noop))
    )
    return instrument(spec.with_event_listener(counter)).build()


Rate = tuple[float, float]  # jobs/s, CPU µs per job


def drain(store: Store, variant: str, count: int) -> Rate:
    instrument, done = instrumenter(variant)
    counter = workloads.SuccessCounter(count)
    bg = build(store, instrument, counter)
    workloads.fill(bg, count)
    try:
        cpu = time.process_time()
        with Stopwatch() as sw:
            bg.start()
            finished = counter.done.wait(timeout=max(60.0, count / 100))
        cpu = time.process_time() - cpu
        if not finished:
            raise RuntimeError(f"{variant}: drained {counter.count} of {count} in time")
    finally:
        bg.stop(timeout=5)
        done()
    return count / sw.seconds, cpu / count * 1e6


def enqueue(store: Store, variant: str, count: int) -> Rate:
    instrument, done = instrumenter(variant)
    bg = build(store, instrument, workloads.SuccessCounter(count))
    bg.enqueue_many([JobRequest("noop", {"i": -1})])  # opens the store outside the timing
    try:
        cpu = time.process_time()
        with Stopwatch() as sw:
            for i in range(count):
                bg.enqueue("noop", {"i": i})
        cpu = time.process_time() - cpu
    finally:
        done()
    return count / sw.seconds, cpu / count * 1e6


Medians = dict[str, dict[str, Rate]]  # benchmark -> variant -> median (jobs/s, CPU µs/job)


def measure(
    backend: str,
    fresh: Callable[[], AbstractContextManager[Store]],
    jobs: int,
    rounds: int,
) -> Medians:
    figures: dict[str, dict[str, list[Rate]]] = {"drain": {}, "enqueue": {}}
    for _ in range(rounds):
        for variant in VARIANTS:
            with fresh() as store:
                figures["drain"].setdefault(variant, []).append(drain(store, variant, jobs))
            with fresh() as store:
                rate = enqueue(store, variant, jobs // 4)
                figures["enqueue"].setdefault(variant, []).append(rate)
    medians = {
        kind: {
            v: (statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates))
            for v, rates in by_variant.items()
        }
        for kind, by_variant in figures.items()
    }
    for kind, by_variant in medians.items():
        say(f"   {backend} {kind}: " + "  ".join(_cell(by_variant, v) for v in by_variant))
    return medians


def _cell(by_variant: dict[str, Rate], variant: str) -> str:
    (rate, cpu), (base_rate, base_cpu) = by_variant[variant], by_variant["off"]
    extra = f"{cpu - base_cpu:+.0f}"
    return f"{rate:,.0f} jobs/s ({rate / base_rate:.2f}x), {cpu:.0f} µs CPU/job ({extra})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-url", default=postgres_bench.DEFAULT_URL)
    args = parser.parse_args(argv)
    say(f"drain {args.jobs:,} no-op jobs (32 slots) and enqueue {args.jobs // 4:,} one by one; "
        f"median of {args.rounds} interleaved rounds")
    table = ["| backend | benchmark | " + " | ".join(VARIANTS) + " |",
             "|---|---|" + "---:|" * len(VARIANTS)]
    results: list[tuple[str, Medians]] = []
    if args.backend in ("sqlite", "all"):
        with tempfile.TemporaryDirectory(prefix="bgjobs-bench-") as name:
            results.append(("sqlite", measure(
                "sqlite", lambda: _sqlite(Path(name)), args.jobs, args.rounds)))
    if args.backend in ("postgres", "all"):
        why = postgres_bench.problem(args.postgres_url)
        if why is None:
            results.append(("postgres", measure(
                "postgres", lambda: _postgres(args.postgres_url), args.jobs, args.rounds)))
        else:
            say(f"   postgres skipped: {why}")
    for backend, medians in results:
        for kind, by_variant in medians.items():
            cells = " | ".join(_cell(by_variant, v) for v in by_variant)
            table.append(f"| {backend} | {kind} | {cells} |")
    say("\n" + "\n".join(table))
    return 0


def _sqlite(tmp: Path) -> AbstractContextManager[Store]:
    return _stores(sqlite_bench.database(tmp, "observability"))


def _postgres(url: str) -> AbstractContextManager[Store]:
    return _stores(postgres_bench.database(url, "observability"))


class _stores:
    """A fresh database's store, from either backend's ``database()`` context manager."""

    def __init__(self, context: AbstractContextManager[object]) -> None:
        self._context = context

    def __enter__(self) -> Store:
        entered = self._context.__enter__()
        store = entered[0] if isinstance(entered, tuple) else entered.store  # type: ignore[attr-defined]
        return store  # type: ignore[no-any-return]

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
