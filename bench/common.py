"""Shared helpers for the benchmarks: settings, percentiles, figures and their printing."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Sizes for one run; ``--quick`` shrinks the slow ones."""

    jobs: int = 10_000
    concurrency: int = 32
    enqueue_batch: int = 100
    latency_samples: int = 200
    skew_seconds: float = 60.0
    quick: bool = False

    @classmethod
    def for_run(cls, *, quick: bool) -> Settings:
        if quick:
            return cls(jobs=2_000, latency_samples=100, skew_seconds=10.0, quick=True)
        return cls()


@dataclass(frozen=True)
class Figure:
    """One measured figure of bgjobs next to its raw-SQL baseline.

    ``higher_is_better`` decides how the ratio reads: for throughput the ratio is
    bgjobs / baseline (1.0 = as fast as raw SQL), for latency it is baseline / bgjobs
    (so in both cases a ratio below 1 means bgjobs is slower than the floor).
    """

    backend: str
    name: str
    unit: str
    bgjobs: float
    baseline: float | None
    higher_is_better: bool
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or self.bgjobs == 0:
            return None
        if self.higher_is_better:
            return self.bgjobs / self.baseline
        return self.baseline / self.bgjobs


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Spread:
    """p50 / p99 / max of a sample, in the sample's unit."""

    p50: float
    p99: float
    max: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(percentile(values, 50), percentile(values, 99), max(values), len(values))

    def describe(self, unit: str = "ms") -> str:
        return (f"p50 {self.p50:.2f} {unit}  p99 {self.p99:.2f} {unit}  "
                f"max {self.max:.2f} {unit}  (n={self.count})")


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def say(text: str = "") -> None:
    print(text, flush=True)


@contextmanager
def section(title: str) -> Iterator[None]:
    say(f"\n== {title}")
    started = time.perf_counter()
    yield
    say(f"   ({time.perf_counter() - started:.1f} s)")


def show(figure: Figure) -> None:
    """Print one figure with its baseline, ratio and target verdict."""
    line = f"   {figure.name}: bgjobs {_num(figure.bgjobs)} {figure.unit}"
    if figure.baseline is not None:
        line += f" | raw SQL {_num(figure.baseline)} {figure.unit}"
    if figure.ratio is not None:
        line += f" | ratio {figure.ratio:.2f}x"
    if figure.target:
        verdict = {True: "MET", False: "MISSED", None: "n/a"}[figure.met]
        line += f" | target {figure.target}: {verdict}"
    say(line)


def throughput(backend: str, name: str, ours: float, base: float,
               minimum_ratio: float | None) -> Figure:
    """A jobs/s figure, shown at once; the target is a minimum ratio to raw SQL (if any)."""
    met = None if minimum_ratio is None else ours >= minimum_ratio * base
    target = f">= {minimum_ratio}x raw" if minimum_ratio is not None else ""
    figure = Figure(backend, name, "jobs/s", ours, base, True, target, met)
    show(figure)
    return figure


def latency(backend: str, name: str, ours: Spread, base: Spread,
            p50_ms: float | None = None, p99_ms: float | None = None) -> list[Figure]:
    """p50 and p99 figures of a latency sample against its baseline, shown at once."""
    say(f"   bgjobs {ours.describe()}\n   raw    {base.describe()}")
    figures = [
        Figure(backend, f"{name} {label}", "ms", value, baseline, False,
               f"<= {limit:g} ms" if limit is not None else "",
               value <= limit if limit is not None else None)
        for label, value, baseline, limit in (("p50", ours.p50, base.p50, p50_ms),
                                              ("p99", ours.p99, base.p99, p99_ms))
    ]
    for figure in figures:
        show(figure)
    return figures


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def markdown_table(figures: Sequence[Figure]) -> str:
    rows = [
        "| backend | benchmark | bgjobs | raw SQL | ratio | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        baseline = f"{_num(f.baseline)} {f.unit}" if f.baseline is not None else "-"
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[f.met]
        rows.append(f"| {f.backend} | {f.name} | {_num(f.bgjobs)} {f.unit} | {baseline} | "
                    f"{ratio} | {f.target or '-'} | {met} |")
    return "\n".join(rows)


def warn(text: str) -> None:
    print(f"   ! {text}", file=sys.stderr, flush=True)
