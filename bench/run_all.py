"""Run the bgjobs benchmarks: ``python bench/run_all.py [--backend sqlite|postgres|all] [--quick]``.

Every figure is printed next to a raw-SQL baseline measured in the same run on the same database,
and a Markdown table of all figures is printed at the end (docs/benchmarks.md keeps one). Exits 1
with a FAILED line if any run was not exactly-once or did not finish; a missed target is not a
failure (the misses are listed at the end).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from contextlib import ExitStack
from datetime import date

import postgres_bench
import skew
import sqlite_bench
from common import BenchmarkFailed, Figure, Settings, markdown_table, say, section, warn
from stats import Verdict


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--quick", action="store_true",
                        help="2,000 jobs, 2 rounds, 10 s scheduler runs (about a minute)")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BGJOBS_TEST_POSTGRES_URL", postgres_bench.DEFAULT_URL))
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = Settings.for_run(quick=args.quick)
    say(f"bgjobs benchmarks {date.today()} on {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite {sqlite_version()}"
        f"{' (quick)' if settings.quick else ''}; {load()}")
    try:
        figures = measure(args, settings)
    except BenchmarkFailed as exc:
        print(f"\nFAILED: {exc}\nNo figures are reported: a run that is not exactly-once, or "
              "that did not finish, measures nothing.", file=sys.stderr, flush=True)
        return 1
    say("\n" + markdown_table(figures))
    say(f"\nThroughput: median of {settings.rounds} rounds, (min-max) in brackets, bgjobs "
        "first in odd rounds and raw first in even ones. A target is MET only if every round "
        "met it, missed only if none did, otherwise within noise.")
    say(f"{load()} at the end (other work on the machine skews every figure)")
    for verdict, label in ((Verdict.MISSED, "missed"), (Verdict.NOISE, "within noise")):
        hits = [f for f in figures if f.verdict is verdict]
        if hits:
            names = "; ".join(f"{f.backend} {f.name}" for f in hits)
            say(f"\n{len(hits)} target(s) {label}: {names}")
    return 0


def measure(args: argparse.Namespace, settings: Settings) -> list[Figure]:
    """Every benchmark the arguments select, in order; raises BenchmarkFailed on a bad run."""
    figures: list[Figure] = []
    with ExitStack() as stack:
        lanes: list[skew.Lane] = []
        if args.backend in ("sqlite", "all"):
            figures += sqlite_bench.run(settings)
            lanes.append(stack.enter_context(sqlite_bench.skew_lane()))
        if args.backend in ("postgres", "all"):
            why = postgres_bench.problem(args.postgres_url)
            if why is None:
                figures += postgres_bench.run(settings, args.postgres_url)
                lanes.append(stack.enter_context(postgres_bench.skew_lane(args.postgres_url)))
            else:
                say("\n== Postgres: skipped")
                warn(why)
        if lanes:
            names = " + ".join(lane.backend for lane in lanes)
            with section(f"Scheduler skew, every 1 s for {settings.skew_seconds:.0f} s "
                         f"({names} at once)"):
                figures += skew.run_lanes(lanes, settings.skew_seconds)
    return figures


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
