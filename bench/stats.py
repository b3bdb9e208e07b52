"""The statistics behind the figures, kept honest about their sample sizes.

- A tail percentile is reported only when the sample resolves it: at least ``MIN_ABOVE`` samples
  must lie above its rank, or it is just the maximum under another name. So a p95 needs 40
  samples and a p99 200; a 60-tick scheduler run has a p50, a p95 and a max, never a p99.
- A figure measured in rounds meets a target only if every round meets it, misses it only if no
  round does, and is otherwise "within noise": the target lies inside the spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

MIN_ABOVE = 2
TAILS = (95, 99)


class Verdict(Enum):
    MET = "MET"
    MISSED = "MISSED"
    NOISE = "within noise"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def resolves(count: int, pct: int) -> bool:
    """Whether ``count`` samples put at least ``MIN_ABOVE`` of them above the pct-th one."""
    return count * (100 - pct) >= MIN_ABOVE * 100


@dataclass(frozen=True)
class Spread:
    """A latency-like sample: its p50, the tail percentiles it resolves, and its max."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("a spread of no values")
        return cls(tuple(sorted(values)))

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def max(self) -> float:
        return self.values[-1]

    def at(self, pct: int) -> float | None:
        """The pct-th percentile, or None if the sample is too small to tell it from the max."""
        return percentile(self.values, pct) if resolves(self.count, pct) else None

    def tails(self) -> list[int]:
        return [pct for pct in TAILS if resolves(self.count, pct)]

    def describe(self, unit: str = "ms") -> str:
        parts = [f"p{pct} {value:.2f} {unit}" for pct in (50, *self.tails())
                 if (value := self.at(pct)) is not None]
        return "  ".join([*parts, f"max {self.max:.2f} {unit}", f"(n={self.count})"])


def judge_rounds(values: Sequence[float], minimum: float) -> Verdict:
    """A "higher is better" target over per-round values."""
    if min(values) >= minimum:
        return Verdict.MET
    if max(values) < minimum:
        return Verdict.MISSED
    return Verdict.NOISE


def judge_percentile(spread: Spread, pct: int, limit: float) -> tuple[Verdict, str]:
    """"pct-th percentile <= limit" on a sample, and the statistic that decided it. If the
    sample cannot resolve that percentile, the max bounds it from above and the highest
    resolved percentile below it bounds it from below; between the two it is within noise."""
    value = spread.at(pct)
    if value is not None:
        return (Verdict.MET if value <= limit else Verdict.MISSED), f"p{pct} of {spread.count}"
    if spread.max <= limit:
        return Verdict.MET, f"max of {spread.count}"
    lower = max((p for p in (50, *TAILS) if p < pct and resolves(spread.count, p)), default=None)
    if lower is not None and (below := spread.at(lower)) is not None and below > limit:
        return Verdict.MISSED, f"p{lower} of {spread.count}"
    return Verdict.NOISE, f"p{pct} needs {math.ceil(MIN_ABOVE * 100 / (100 - pct))} samples"
