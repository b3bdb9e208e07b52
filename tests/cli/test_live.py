"""The live view: rendering known data, and the view wired to a real runtime."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

from rich.console import Console
from tests.conftest import wait_until

import bgjobs
from bgjobs.adapters.base import NodeInfo, QueueStats
from bgjobs.cli.live import LiveView, Throughput, run_live
from bgjobs.cli.render import EventRow, QueueRow, Snapshot, dashboard, relative
from bgjobs.runtime.app import ScheduleInfo

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def render(renderable: object, width: int = 120) -> str:
    console = Console(width=width, record=True, file=StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def test_dashboard_renders_known_data() -> None:
    snapshot = Snapshot(
        title="bgjobs running · sqlite:///demo.db · node host:1:abc",
        now=NOW,
        queues=[
            QueueRow(QueueStats("default", 7, 2, 3, 4, 120, 5), slots=(3, 4), throughput=2.5),
            QueueRow(QueueStats("other", 1, 0, 0, 0, 0, 0), slots=None, throughput=0.0),
        ],
        schedules=[
            ScheduleInfo(
                "cleanup",
                "cron '*/10 * * * * *' tz=UTC",
                "scheduled",
                NOW + timedelta(seconds=3),
                False,
                NOW - timedelta(seconds=7),
                "succeeded",
            ),
            ScheduleInfo(
                "report", "every 1h", "scheduled", NOW + timedelta(minutes=42), True, None, None
            ),
        ],
        nodes=[
            NodeInfo(
                "host:1:abc",
                "host",
                1,
                NOW - timedelta(minutes=5),
                NOW - timedelta(seconds=2),
                ("default", "scheduled"),
            )
        ],
        events=[
            EventRow(NOW, "INFO", "JobSucceeded send_email#12 queue=default attempt=1 in 3.0ms"),
            EventRow(NOW, "WARN", "JobFailed resize_image#13 queue=media attempt=1 OSError: x"),
        ],
        this_node="host:1:abc",
        footer="Ctrl-C stops gracefully",
    )
    text = render(dashboard(snapshot))
    lines = text.splitlines()
    squeezed = " ".join(text.split())
    assert lines[0].startswith("bgjobs running · sqlite:///demo.db · node host:1:abc")
    assert "2025-03-01 12:00:00 UTC" in lines[0]
    header = next(line for line in lines if line.startswith("queue "))
    assert header.split() == [
        "queue",
        "slots",
        "running",
        "available",
        "scheduled",
        "failed",
        "ok",
        "1m",
        "failed",
        "1m",
        "jobs/s",
    ]
    default = next(line for line in lines if line.startswith("default "))
    assert default.split() == ["default", "3/4", "3", "7", "2", "4", "120", "5", "2.5"]
    other = next(line for line in lines if line.startswith("other "))
    assert other.split()[:2] == ["other", "-"]
    cleanup = next(line for line in lines if line.startswith("cleanup "))
    assert "in 3s  2025-03-01 12:00:03" in cleanup and "succeeded 7s ago" in cleanup
    report = next(line for line in lines if line.startswith("report "))
    assert "every 1h" in report and "in 42m" in report and "running" in report
    node = next(line for line in lines if line.startswith("host:1:abc"))
    assert "(this)" in node and "default, scheduled" in node and "5m" in node
    assert "2s ago" in node
    assert "INFO JobSucceeded send_email#12 queue=default attempt=1 in 3.0ms" in squeezed
    assert "WARN JobFailed resize_image#13 queue=media attempt=1 OSError: x" in squeezed
    assert text.index("Recent events") > text.index("Nodes") > text.index("Scheduled jobs")
    assert lines[-1].strip() == "Ctrl-C stops gracefully"
    assert max(len(line) for line in lines) <= 120


def test_empty_dashboard_says_so() -> None:
    text = render(dashboard(Snapshot(title="bgjobs starting", now=NOW)))
    assert "no jobs yet" in text and "no node is running" in text
    assert "waiting for events" in text and "Scheduled jobs" not in text


def test_relative_times() -> None:
    assert relative(NOW + timedelta(seconds=3), NOW) == "in 3s"
    assert relative(NOW - timedelta(minutes=2, seconds=5), NOW) == "2m 5s ago"
    assert relative(NOW + timedelta(hours=3), NOW) == "in 3h"
    assert relative(NOW + timedelta(days=2, hours=1), NOW) == "in 2d 1h"
    assert relative(NOW, NOW) == "now"


def test_throughput_is_a_sliding_window() -> None:
    now = [100.0]
    meter = Throughput(window=10, clock=lambda: now[0])
    now[0] = 120.0  # running for 20 s: rates are per 10 s
    for _ in range(20):
        meter.record("a")
    assert meter.rate("a") == 2.0 and meter.rate("b") == 0.0
    now[0] = 125.0
    meter.record("a")
    assert meter.rate("a") == 2.1
    now[0] = 131.0
    assert meter.rate("a") == 0.1


def _app(database_url: str) -> bgjobs.BgJobs:
    return (
        bgjobs.new(database_url)
        .with_queue(
            bgjobs.queue("default")
            .with_max_concurrent_jobs(3)
            .with_worker(bgjobs.worker("ok", lambda job: None))
        )
        .with_scheduled_job(
            bgjobs.scheduled_job(bgjobs.worker("tick", lambda job: None), bgjobs.every(hours=1))
        )
        .build()
    )


def test_live_view_follows_a_real_runtime(database_url: str) -> None:
    bg = _app(database_url)
    view = LiveView(bg)
    bg.add_listener(view.on_event)
    assert "bgjobs starting" in render(view.render())
    bg.start()
    try:
        jobs = [bg.enqueue("ok", n) for n in range(4)]
        wait_until(lambda: all(_state(bg, job.id) == "succeeded" for job in jobs), what="jobs")
        view.refresh()
        text = render(view.render())
    finally:
        view.close()
        bg.stop()
        bg.store.close()
    lines = text.splitlines()
    assert lines[0].startswith("bgjobs running")
    default = next(line for line in lines if line.startswith("default "))
    cells = default.split()
    assert cells[1] == "0/3" and cells[6] == "4"  # slots, ok 1m
    assert float(cells[-1]) > 0
    tick = next(line for line in lines if line.startswith("tick "))
    assert "every 1h" in tick and "never ran" in tick
    assert f"{bg.node_id} (this)" in text
    assert "JobSucceeded ok#" in text


def test_run_live_draws_until_stopped(database_url: str) -> None:
    """The whole `bgjobs run --live` path: bg.run() in this thread, the view in its own."""
    bg = _app(database_url)
    out = StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)

    def drive() -> None:
        wait_until(lambda: bg.state.value == "running", what="the runtime to start")
        jobs = [bg.enqueue("ok", n) for n in range(3)]
        wait_until(lambda: f"{bg.node_id} (this)" in out.getvalue(), what="a running frame")
        wait_until(lambda: all(_state(bg, job.id) == "succeeded" for job in jobs), what="jobs")
        bg.request_stop()

    driver = threading.Thread(target=drive)
    driver.start()
    run_live(bg, console)
    driver.join(10)
    bg.store.close()
    final = out.getvalue()
    assert "bgjobs running" in final and "bgjobs stopped" in final
    assert f"{bg.node_id} (this)" in final
    assert "RuntimeStopped" in final


def _state(bg: bgjobs.BgJobs, job_id: int) -> str | None:
    job = bg.store.get_job(job_id)
    return job.state.value if job else None
