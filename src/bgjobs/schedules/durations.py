"""Duration text: ``parse_duration`` reads ``"1h30m"``-style strings and
``_format_duration`` writes the canonical form used by ``Interval.describe()``."""

from __future__ import annotations

import re
from datetime import timedelta

_ONE_US = timedelta(microseconds=1)

# Largest first: _format_duration is greedy and parse_duration accepts the same names.
_DURATION_UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
    "us": timedelta(microseconds=1),
}

# "ms" must be tried before "m"; the lookahead stops "5mo" reading as "5m" + junk.
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)(ms|us|w|d|h|m|s)(?![A-Za-z])")


def parse_duration(text: str) -> timedelta:
    """Parse ``"500ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"7d"``, ``"1w"`` or combinations
    such as ``"1h30m"`` (spaces between parts allowed, each unit at most once).

    Raises ``ValueError`` with the accepted syntax when the text cannot be read.
    """
    hint = "use a number and a unit (w, d, h, m, s, ms, us), e.g. '30s', '5m', '1h30m'"
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty duration {text!r}; {hint}")
    total = timedelta(0)
    seen: set[str] = set()
    pos = 0
    stripped = text.strip()
    while pos < len(stripped):
        match = _DURATION_PART.match(stripped, pos)
        if match is None:
            raise ValueError(f"cannot parse duration {text!r} at {stripped[pos:]!r}; {hint}")
        number, unit = match.groups()
        if unit in seen:
            raise ValueError(f"duration {text!r} repeats unit {unit!r}; give each unit once")
        seen.add(unit)
        step = _DURATION_UNITS[unit]
        total += step * int(number) if number.isdigit() else step * float(number)
        pos = match.end()
    return total


def _format_duration(period: timedelta) -> str:
    remaining = period // _ONE_US
    parts: list[str] = []
    for unit, size in _DURATION_UNITS.items():
        count, remaining = divmod(remaining, size // _ONE_US)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
