"""Many threads of one OS process enqueueing the same unique keys at once, for race tests.

    python -m tests.support.enqueue_race URL --threads 8 --keys 40

Builds the runtime (opening the store), prints "ready", waits for a line "go" on stdin, then each
thread enqueues keys 0..KEYS-1 in order with unique=Unique(fields=("k",)). Prints one JSON line:
[[key, job id, duplicate], ...] for every call of every thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

import bgjobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keys", type=int, default=40)
    args = parser.parse_args()
    bg = (
        bgjobs.new(bgjobs.open_store(args.url))
        .with_queue(bgjobs.queue("work").with_worker(bgjobs.worker("work", lambda job: None)))
        .build()
    )
    bg.store.open()
    start = threading.Barrier(args.threads + 1)
    results: list[tuple[int, int, bool]] = []
    lock = threading.Lock()

    def enqueue_all() -> None:
        start.wait()
        for k in range(args.keys):
            job = bg.enqueue("work", {"k": k}, unique=bgjobs.Unique(fields=("k",)))
            with lock:
                results.append((k, job.id, job.duplicate))

    threads = [threading.Thread(target=enqueue_all) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit(2)
    start.wait()
    for thread in threads:
        thread.join()
    print(json.dumps(results), flush=True)
    bg.store.close()


if __name__ == "__main__":
    main()
