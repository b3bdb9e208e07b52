"""Measurements into figures, each shown as it is made: throughput over paired rounds, an
absolute floor, and a latency sample's percentiles against their targets."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from common import Figure, say, show
from rounds import Paired
from stats import Spread, Verdict, judge_percentile, judge_rounds


def _spread(values: Sequence[float]) -> tuple[float, float] | None:
    return (min(values), max(values)) if len(values) > 1 else None


def throughput(backend: str, name: str, result: Paired,
               minimum_ratio: float | None) -> Figure:
    """A jobs/s figure: medians and spreads of both sides; the target (if any) is a minimum
    ratio to raw SQL, judged on the per-round ratios."""
    figure = Figure(
        backend, name, "jobs/s",
        statistics.median(result.ours), statistics.median(result.base), True,
        target=f">= {minimum_ratio}x raw" if minimum_ratio is not None else "",
        verdict=judge_rounds(result.ratios, minimum_ratio) if minimum_ratio is not None else None,
        bgjobs_range=_spread(result.ours), baseline_range=_spread(result.base),
        ratios=result.ratios,
    )
    show(figure)
    return figure


def absolute(backend: str, name: str, values: Sequence[float], minimum: float) -> Figure:
    """A jobs/s floor with no baseline, judged on the per-round values."""
    figure = Figure(backend, name, "jobs/s", statistics.median(values), None, True,
                    f">= {minimum:,.0f} jobs/s", judge_rounds(values, minimum),
                    bgjobs_range=_spread(values))
    show(figure)
    return figure


def latency(backend: str, name: str, ours: Spread, base: Spread,
            limits: Mapping[int, float] | None = None) -> list[Figure]:
    """One row per statistic the bgjobs sample resolves (p50, p95, p99, then max), each next to
    the baseline's, with ``limits`` ({percentile: ms}) judged by ``judge_percentile``: a target
    the sample cannot resolve sits on the row of the statistic that decided it, or on the max."""
    say(f"   bgjobs {ours.describe()}\n   raw    {base.describe()}")
    rows: dict[str, tuple[float, float | None]] = {
        f"p{pct} of {ours.count}": (value, base.at(pct))
        for pct in (50, *ours.tails()) if (value := ours.at(pct)) is not None
    }
    top = f"max of {ours.count}"
    rows[top] = (ours.max, base.max)
    targets: dict[str, tuple[str, Verdict | None]] = {}
    for pct, limit in (limits or {}).items():
        verdict, statistic = judge_percentile(ours, pct, limit)
        target = f"p{pct} <= {limit:g} ms"
        if statistic != f"p{pct} of {ours.count}":
            target += f" ({'by ' if statistic in rows else ''}{statistic})"
        targets[statistic if statistic in rows else top] = (target, verdict)
    figures = []
    for label, (value, baseline) in rows.items():
        target, judged = targets.get(label, ("", None))
        figure = Figure(backend, f"{name} {label}", "ms", value, baseline, False, target, judged)
        show(figure)
        figures.append(figure)
    return figures
