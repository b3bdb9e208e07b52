"""The live view of `bgjobs run`: a rich.live dashboard refreshed about 4 times a second.

The runtime runs in the main thread (``bg.run()`` owns the signals, so Ctrl-C drains and a
second Ctrl-C skips the grace period); the view runs in its own thread. Event listeners only
append to bounded buffers, and the status queries run in the view thread at most twice a
second (less often when they are slow), so the view never slows down job processing. On
SQLite the view reads through its own connection: one SQLiteStore serialises all of its calls
behind a lock, and a status query must not hold up a claim.

What it shows comes from one read per refresh: a queue's running count and this node's busy
slots are both counted from the same ``queue_stats`` rows, so they never disagree. Any event
appears in the recent-events panel (``Event.describe()``), and every kind is tallied over the
last minute, so what a newer capability emits (deduplicated, cancelled, rescued...) shows up
without code here. Progress has its own panel: the running jobs, read from the database.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from rich.console import Console, RenderableType
from rich.live import Live

from bgjobs.adapters.base import JobFilter, NodeInfo, QueueStats, Store
from bgjobs.cli.output import event_level, one_line
from bgjobs.cli.render import (
    RUNNING_ROWS,
    EventRow,
    QueueRow,
    Snapshot,
    Tally,
    dashboard,
    duration_text,
)
from bgjobs.events import (
    Event,
    JobDiscarded,
    JobFailed,
    JobProgress,
    JobReserved,
    JobStarted,
    JobSucceeded,
    Migrated,
    QueuePollingStarted,
    QueuePollingStopped,
    RuntimeEvent,
    RuntimeStarted,
    RuntimeStopped,
    ScheduledNextRun,
)
from bgjobs.job import Job, JobState
from bgjobs.runtime.app import BgJobs, ScheduleInfo

RECENT = timedelta(minutes=1)  # the "ok 1m" / "failed 1m" columns
SLOW_QUERY_FACTOR = 10  # after a status refresh taking t seconds, wait at least 10 t
# Steps every job takes and the node's own lifecycle, left out of the activity tally: it counts
# what happened to jobs and schedules, and anything else (a new kind of event included).
ROUTINE = (
    JobReserved,
    JobStarted,
    JobProgress,
    ScheduledNextRun,
    QueuePollingStarted,
    QueuePollingStopped,
    RuntimeEvent,
    Migrated,
)


def status_store(bg: BgJobs) -> tuple[Store, bool]:
    """The store the view queries, and whether the view owns (and must close) it."""
    return bg.store.monitor()


class Throughput:
    """Things counted per key (jobs finished per queue, events per kind) over a sliding window,
    in 1 s buckets."""

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._started = clock()
        self._buckets: dict[str, deque[list[int]]] = {}
        self._lock = threading.Lock()

    def record(self, key: str) -> None:
        second = int(self._clock())
        with self._lock:
            buckets = self._buckets.setdefault(key, deque())
            if buckets and buckets[-1][0] == second:
                buckets[-1][1] += 1
            else:
                buckets.append([second, 1])
            while buckets and buckets[0][0] <= second - self._window:
                buckets.popleft()

    def count(self, key: str) -> int:
        """How many were recorded under ``key`` within the window."""
        now = self._clock()
        with self._lock:
            return sum(
                count for second, count in self._buckets.get(key, ()) if second > now - self._window
            )

    def rate(self, key: str) -> float:
        """Per second, over the window (or the time since the meter started, if shorter)."""
        return self.count(key) / min(self._window, max(self._clock() - self._started, 1.0))

    def recorded(self) -> list[str]:
        """Every key ever recorded (its count may be 0 by now)."""
        with self._lock:
            return sorted(self._buckets)


class LiveView:
    def __init__(
        self, bg: BgJobs, *, event_count: int = 8, fps: float = 4.0, stats_interval: float = 0.5
    ) -> None:
        self.bg = bg
        self.events: deque[EventRow] = deque(maxlen=event_count)
        self.throughput = Throughput()
        self.activity = Throughput(window=RECENT.total_seconds())
        self._levels: dict[str, str] = {}
        self._fps = fps
        self._stats_interval = stats_interval
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._stats: list[QueueStats] = []
        self._running: list[Job] = []
        self._schedules: list[ScheduleInfo] = []
        self._nodes: list[NodeInfo] = []
        self._problem: str | None = None
        self._store: Store | None = None
        self._owns_store = False

    # runtime threads: cheap appends only ---------------------------------------------------
    def on_event(self, event: Event) -> None:
        if not isinstance(event, ROUTINE):
            level = event_level(event)
            self._levels[event.kind] = level
            self.activity.record(event.kind)
        if not isinstance(event, JobProgress):  # the running-jobs panel shows progress
            self.events.append(EventRow(event.at, event_level(event), event.describe()))
        if isinstance(event, JobSucceeded | JobFailed | JobDiscarded):
            self.throughput.record(event.job.queue)
        elif isinstance(event, RuntimeStarted) and event.node_id == self.bg.node_id:
            self._started.set()
        elif isinstance(event, RuntimeStopped) and event.node_id == self.bg.node_id:
            self._stopped.set()

    # view thread -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Run the status queries (queue counts, schedules, nodes)."""
        if not self._started.is_set():
            return
        try:
            if self._store is None:
                self._store, self._owns_store = status_store(self.bg)
            self._stats = self._store.queue_stats(RECENT)
            running = sum(s.running for s in self._stats)
            self._running = (
                self._store.list_jobs(JobFilter(state=JobState.RUNNING, limit=RUNNING_ROWS))
                if running
                else []
            )
            self._schedules = self.bg.schedules()
            self._nodes = self._store.list_nodes()
            self._problem = None
        except Exception as exc:  # the database may be down for a while; keep drawing
            self._problem = one_line(f"status query failed: {type(exc).__name__}: {exc}")

    def snapshot(self) -> Snapshot:
        started = self._started.is_set()
        limits = {q.name: q.max_concurrent_jobs for q in self.bg.queues} if started else {}
        stats = {s.queue: s for s in self._stats}
        rows = []
        for name in sorted(set(stats) | set(limits)):
            queue = stats.get(name) or QueueStats(name, 0, 0, 0, 0, 0, 0)
            # Busy slots from the same read as the running count: they cannot disagree.
            used = queue.running_by_node.get(self.bg.node_id, 0)
            slots = (used, limits[name]) if name in limits else None
            rows.append(QueueRow(queue, slots, self.throughput.rate(name)))
        state = (
            "stopped"
            if self._stopped.is_set()
            else (self.bg.state.value if started else "starting")
        )
        return Snapshot(
            title=f"bgjobs {state} · {self.bg.store.display_url} · node {self.bg.node_id}",
            now=self.bg.now(),
            queues=rows,
            schedules=self._schedules,
            nodes=self._nodes,
            events=list(self.events),
            running=self._running,
            running_total=sum(s.running for s in self._stats),
            activity=self._tallies(),
            this_node=self.bg.node_id,
            problem=self._problem,
            footer=self._footer(state),
        )

    def _tallies(self) -> list[Tally]:
        counted = [(kind, self.activity.count(kind)) for kind in self.activity.recorded()]
        return [Tally(kind, n, self._levels.get(kind, "INFO")) for kind, n in counted if n]

    def _footer(self, state: str) -> str:
        grace = duration_text(self.bg.spec.shutdown_grace)
        if state == "running":
            return f"Ctrl-C stops gracefully: running jobs get up to {grace} to finish"
        if state == "stopping":
            return f"draining: waiting up to {grace} for running jobs, then handing them back"
        return ""

    def close(self) -> None:
        if self._store is not None and self._owns_store:
            self._store.close()
        self._store = None

    def render(self) -> RenderableType:
        return dashboard(self.snapshot())

    def loop(self, stop: threading.Event, console: Console | None = None) -> None:
        """Draw until ``stop`` is set, then draw the final frame and leave it on screen."""
        try:
            with Live(
                self.render(),
                console=console,
                auto_refresh=False,
                redirect_stdout=True,
                redirect_stderr=True,
            ) as live:
                next_stats = 0.0
                while not stop.is_set():
                    if time.monotonic() >= next_stats:
                        began = time.monotonic()
                        self.refresh()
                        took = time.monotonic() - began
                        next_stats = began + max(self._stats_interval, SLOW_QUERY_FACTOR * took)
                    live.update(self.render(), refresh=True)
                    stop.wait(1 / self._fps)
                self.refresh()
                live.update(self.render(), refresh=True)
        finally:
            self.close()


def run_live(bg: BgJobs, console: Console | None = None) -> None:
    """Run ``bg`` until SIGINT/SIGTERM with the live view on the terminal."""
    view = LiveView(bg)
    bg.add_listener(view.on_event)
    stop = threading.Event()
    thread = threading.Thread(
        target=view.loop, args=(stop, console), name="bgjobs-live-view", daemon=True
    )
    thread.start()
    try:
        bg.run()
    finally:
        stop.set()
        thread.join(timeout=10)
