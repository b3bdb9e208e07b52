"""Profile a benchmark across all threads with cProfile (the runtime works in many threads).

    python bench/profile_threads.py drain [--jobs 10000] [--delete] [--top 30] [--postgres]
    python bench/profile_threads.py enqueue [--jobs 10000] [--postgres]

Every thread started inside the profiled block gets its own cProfile.Profile; their stats are
merged at the end. Idle waits show up as time in ``wait``/``acquire``: read ``tottime``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import postgres_bench
import workloads

import bgjobs


@contextmanager
def all_threads() -> Iterator[list[cProfile.Profile]]:
    """Profile the calling thread and every thread started inside the block."""
    profiles: list[cProfile.Profile] = []
    original: Callable[[threading.Thread], None] = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    main = cProfile.Profile()
    profiles.append(main)
    setattr(threading.Thread, "run", run)  # noqa: B010 - patching a method on purpose
    main.enable()
    try:
        yield profiles
    finally:
        main.disable()
        setattr(threading.Thread, "run", original)  # noqa: B010


def report(profiles: list[cProfile.Profile], top: int) -> None:
    stats: pstats.Stats | None = None
    for profile in profiles:
        try:
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        except TypeError:  # a thread that never ran any code
            continue
    if stats is None:
        return
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench", choices=("drain", "enqueue"))
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delete", action="store_true", help="delete on success")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--postgres", action="store_true",
                        help=f"profile on Postgres ({postgres_bench.DEFAULT_URL}, own schema)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        if args.postgres:
            store = stack.enter_context(postgres_bench.database(
                postgres_bench.DEFAULT_URL, "profile")).store
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(ignore_cleanup_errors=True))
            store = bgjobs.sqlite(Path(tmp) / "profile.db")
            stack.callback(store.close)
            store.open()
        run: Callable[[], Any]
        if args.bench == "drain":
            run = lambda: workloads.drain(  # noqa: E731
                store, args.jobs, args.concurrency, keep_succeeded=not args.delete)
        else:
            run = lambda: workloads.enqueue_one_by_one(store, args.jobs)  # noqa: E731
        with all_threads() as profiles:
            rate = run()
    print(f"{args.bench}: {rate:,.0f} jobs/s under the profiler")
    report(profiles, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
