"""Backoff policies: how long to wait before the next attempt of a failed job."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bgjobs.errors import ConfigError


class Backoff(Protocol):
    def delay(self, attempt: int) -> timedelta:
        """Delay before the attempt after ``attempt`` (1-based: the one that just failed)."""
        ...


@dataclass(frozen=True)
class ExponentialBackoff:
    """base * factor**(attempt-1), capped, with +/- jitter so a burst of failures spreads out.

    Defaults: 1s, 2s, 4s ... capped at 1 hour, jitter 10%.
    """

    base: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base < timedelta(0) or self.cap < timedelta(0):
            raise ConfigError("backoff base and cap must not be negative")
        if self.factor < 1:
            raise ConfigError(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"backoff jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, attempt: int) -> timedelta:
        exponent = max(attempt - 1, 0)
        # Cap the exponent before computing so huge attempt counts cannot overflow.
        seconds = min(
            self.base.total_seconds() * self.factor ** min(exponent, 64), self.cap.total_seconds()
        )
        spread = seconds * self.jitter
        return timedelta(seconds=max(0.0, seconds + random.uniform(-spread, spread)))


@dataclass(frozen=True)
class ConstantBackoff:
    """The same delay after every failure (Exqueue's 30 seconds, for example)."""

    every: timedelta

    def delay(self, attempt: int) -> timedelta:
        return self.every


def exponential(
    base: timedelta = timedelta(seconds=1),
    factor: float = 2.0,
    cap: timedelta = timedelta(hours=1),
    jitter: float = 0.1,
) -> ExponentialBackoff:
    return ExponentialBackoff(base=base, factor=factor, cap=cap, jitter=jitter)


def constant(every: timedelta) -> ConstantBackoff:
    if every < timedelta(0):
        raise ConfigError("constant backoff must not be negative")
    return ConstantBackoff(every=every)
