"""Shared helpers for the benchmarks: settings, the stopwatch, figures and their printing."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from stats import Verdict


@dataclass(frozen=True)
class Settings:
    """Sizes for one run; ``--quick`` shrinks the slow ones. Latency keeps its 200 samples (the
    least that resolves a p99), taken in two rounds with the order of the sides swapped."""

    jobs: int = 10_000
    concurrency: int = 32
    enqueue_batch: int = 100
    rounds: int = 3
    latency_samples: int = 200
    latency_rounds: int = 2
    skew_seconds: float = 60.0
    quick: bool = False

    @classmethod
    def for_run(cls, *, quick: bool) -> Settings:
        if quick:
            return cls(jobs=2_000, rounds=2, skew_seconds=10.0, quick=True)
        return cls()


class BenchmarkFailed(RuntimeError):
    """A benchmark could not produce an honest figure (a job ran twice, a drain stalled): the
    suite stops and exits non-zero instead of printing a rate that counts it."""


@dataclass(frozen=True)
class Figure:
    """One measured figure of bgjobs next to its raw-SQL baseline.

    ``higher_is_better`` decides how the ratio reads: for throughput the ratio is
    bgjobs / baseline (1.0 = as fast as raw SQL), for latency it is baseline / bgjobs
    (so in both cases a ratio below 1 means bgjobs is slower than the floor). A figure measured
    in rounds holds the medians, the (min, max) of each side and the per-round ratios.
    """

    backend: str
    name: str
    unit: str
    bgjobs: float
    baseline: float | None
    higher_is_better: bool
    target: str = ""
    verdict: Verdict | None = None
    bgjobs_range: tuple[float, float] | None = None
    baseline_range: tuple[float, float] | None = None
    ratios: tuple[float, ...] = ()

    @property
    def ratio(self) -> float | None:
        if self.ratios:
            return statistics.median(self.ratios)
        if self.baseline is None or self.baseline == 0 or self.bgjobs == 0:
            return None
        if self.higher_is_better:
            return self.bgjobs / self.baseline
        return self.baseline / self.bgjobs

    @property
    def ratio_range(self) -> tuple[float, float] | None:
        return (min(self.ratios), max(self.ratios)) if len(self.ratios) > 1 else None


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
    line = f"   {figure.name}: bgjobs {_cell(figure.bgjobs, figure.bgjobs_range, figure.unit)}"
    if figure.baseline is not None:
        line += f" | raw SQL {_cell(figure.baseline, figure.baseline_range, figure.unit)}"
    if figure.ratio is not None:
        line += f" | ratio {_ratio(figure)}"
    if figure.target:
        verdict = figure.verdict.value if figure.verdict else "n/a"
        line += f" | target {figure.target}: {verdict}"
    say(line)


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def _cell(value: float, spread: tuple[float, float] | None, unit: str) -> str:
    text = f"{_num(value)} {unit}"
    return text + (f" ({_num(spread[0])}-{_num(spread[1])})" if spread else "")


def _ratio(figure: Figure) -> str:
    spread = figure.ratio_range
    text = f"{figure.ratio:.2f}x"
    return text + (f" ({spread[0]:.2f}-{spread[1]:.2f})" if spread else "")


VERDICT_CELLS = {Verdict.MET: "yes", Verdict.MISSED: "**no**", Verdict.NOISE: "within noise"}


def markdown_table(figures: Sequence[Figure]) -> str:
    rows = [
        "| backend | benchmark | bgjobs | raw SQL | ratio | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        baseline = _cell(f.baseline, f.baseline_range, f.unit) if f.baseline is not None else "-"
        ratio = _ratio(f) if f.ratio is not None else "-"
        met = VERDICT_CELLS[f.verdict] if f.verdict else "-"
        rows.append(f"| {f.backend} | {f.name} | {_cell(f.bgjobs, f.bgjobs_range, f.unit)} | "
                    f"{baseline} | {ratio} | {f.target or '-'} | {met} |")
    return "\n".join(rows)


def warn(text: str) -> None:
    print(f"   ! {text}", file=sys.stderr, flush=True)
