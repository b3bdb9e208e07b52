"""A fixed-size thread pool for sync handlers that can give up on a stuck thread.

When a job times out, its thread may be blocked in C code where no exception can reach it. The pool
then retires that thread (it exits once its handler returns) and starts a replacement, so the
queue keeps its full concurrency.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

Task = Callable[[], None]


class WorkerPool:
    def __init__(self, size: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._name = name
        self._retired: set[int] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._count = 0
        for _ in range(size):
            self._start_thread()

    def _start_thread(self) -> None:
        with self._lock:
            self._count += 1
            thread = threading.Thread(
                target=self._work, name=f"bgjobs-{self._name}-{self._count}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.get_ident()
        while True:
            task = self._tasks.get()
            if task is None:
                return
            # A timeout can land after the handler returned; it must not kill the thread.
            with contextlib.suppress(BaseException):
                task()
            with self._lock:
                if me in self._retired:
                    self._retired.discard(me)
                    return

    def submit(self, task: Task) -> None:
        self._tasks.put(task)

    def retire(self, thread_id: int) -> None:
        """Replace a worker thread that is stuck in a timed-out handler."""
        with self._lock:
            self._retired.add(thread_id)
        self._start_thread()

    def shutdown(self) -> None:
        """Ask idle threads to exit; busy ones exit after their task (they are daemons)."""
        with self._lock:
            count = len(self._threads)
        for _ in range(count):
            self._tasks.put(None)
