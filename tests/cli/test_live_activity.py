"""The live view shows everything that happens: any event kind (tallied and listed), running
jobs with their progress, slots and running counts from one read, at a steady width; and long
cells are cut at a word boundary on a terminal, kept whole in a pipe."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO

from rich.text import Text
from tests.cli.conftest import Invoke, as_json, ok
from tests.conftest import wait_until

import bgjobs
from bgjobs.adapters.base import ClaimRequest, NodeInfo, QueueStats
from bgjobs.cli.live import LiveView
from bgjobs.cli.render import EventRow, QueueRow, Snapshot, Tally, clip_words, dashboard
from bgjobs.events import Event, JobCancelled, JobProgress, JobRescued
from bgjobs.job import Job, JobState, Progress

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def render(renderable: object, width: int = 140) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, file=StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def job(job_id: int = 12, **fields: object) -> Job:
    values: dict[str, object] = {
        "id": job_id,
        "queue": "media",
        "name": "resize_image",
        "raw_payload": "{}",
        "state": JobState.RUNNING,
        "priority": 0,
        "attempt": 1,
        "max_attempts": 3,
        "available_at": NOW,
        "created_at": NOW,
        "scheduled_at": NOW,
        "reserved_by": "host:7:abc",
        "reserved_at": NOW - timedelta(seconds=75),
    }
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class ScheduleConflictLike(Event):
    """An event kind the live view has no code for (as other work adds them)."""

    schedule: str
    definitions: tuple[str, ...]


def _app(database_url: str, handler: object = None) -> bgjobs.BgJobs:
    return (
        bgjobs.new(database_url)
        .with_queue(
            bgjobs.queue("media")
            .with_max_concurrent_jobs(3)
            .with_worker(bgjobs.worker("resize_image", handler or (lambda job: None)))
        )
        .build()
    )


def test_any_event_is_listed_and_tallied_without_code_of_its_own(database_url: str) -> None:
    bg = _app(database_url)
    view = LiveView(bg)
    conflict = ScheduleConflictLike(
        at=NOW, schedule="nightly", definitions=("every 1h", "cron '0 3 * * *'")
    )
    view.on_event(conflict)
    view.on_event(JobCancelled(at=NOW, job=job(3, state=JobState.CANCELLED)))
    view.on_event(JobRescued(at=NOW, job=job(4), reason="node host:9:dead stopped heartbeating"))
    view.on_event(JobRescued(at=NOW, job=job(5), reason="node host:9:dead stopped heartbeating"))
    view.on_event(JobProgress(at=NOW, job=job(6), fraction=0.5, message="half"))
    text = " ".join(render(view.render()).split())
    assert "ScheduleConflictLike schedule=nightly definitions=every 1h,cron '0 3 * * *'" in text
    assert "INFO JobCancelled resize_image#3" in text
    assert "WARN JobRescued resize_image#4 queue=media attempt=1 reason=node host:9:dead" in text
    assert (
        "last minute on this node: 2 JobRescued · 1 JobCancelled · 1 ScheduleConflictLike" in text
        or "1 JobCancelled · 2 JobRescued · 1 ScheduleConflictLike" in text
    )
    assert "JobProgress" not in text  # progress has its own panel, not the event list


def test_running_jobs_are_shown_with_their_progress() -> None:
    running = [
        job(12, progress=Progress(0.4, "resized 4/10")),
        job(13, name="send_email", queue="default", reserved_at=NOW - timedelta(seconds=3)),
    ]
    snapshot = Snapshot(
        title="bgjobs running",
        now=NOW,
        queues=[QueueRow(QueueStats("media", 0, 0, 2, 0, 0, 0), slots=(2, 3))],
        running=running,
        running_total=11,
        activity=[Tally("JobSucceeded", 120), Tally("JobRescued", 1, "WARN")],
    )
    text = render(dashboard(snapshot))
    assert "Running jobs (2 of 11)" in text
    row = next(line for line in text.splitlines() if line.lstrip().startswith("12 "))
    assert "resize_image" in row and "1m 15s" in row and "host:7:abc" in row
    assert "████░░░░░░  40% resized 4/10" in row
    other = next(line for line in text.splitlines() if line.lstrip().startswith("13 "))
    assert "send_email" in other and "3s" in other and other.rstrip().endswith("-")
    assert "last minute on this node: 120 JobSucceeded · 1 JobRescued" in text


def test_column_widths_do_not_move_as_numbers_grow() -> None:
    def header(count: int, slots: tuple[int, int], rate: float) -> list[str]:
        stats = QueueStats("default", count, count, count, count, count, count)
        node = NodeInfo("host:1:abc", "host", 1, NOW - timedelta(seconds=count), NOW, ("q",))
        snapshot = Snapshot(
            title="bgjobs running",
            now=NOW,
            queues=[QueueRow(stats, slots=slots, throughput=rate)],
            nodes=[node],
        )
        lines = render(dashboard(snapshot)).splitlines()
        return [line for line in lines if line.startswith(("queue ", "node "))]

    assert header(1, (0, 4), 0.0) == header(1_234_567, (100, 200), 12345.6)
    assert header(5, (1, 4), 0.5) == header(3599, (1, 4), 0.5)


def test_slots_and_running_come_from_one_read(database_url: str) -> None:
    """A job reserved by this node that its runners do not hold (claimed by a loop that since
    restarted, or about to be released) counts in both, never in one only."""
    bg = _app(database_url)
    (queued,) = [bg.enqueue("resize_image", {"n": 1}, delay=timedelta(0))]
    bg.store.claim(
        ClaimRequest(queue="media", node_id=bg.node_id, limit=1, lease=timedelta(minutes=5))
    )
    view = LiveView(bg)
    bg.add_listener(view.on_event)
    bg.start()
    try:
        view.refresh()
        text = render(view.render())
    finally:
        view.close()
        bg.stop(timeout=1)
        bg.store.close()
    media = next(line for line in text.splitlines() if line.startswith("media "))
    cells = media.split()
    assert cells[1:3] == ["1/3", "1"], media  # slots used, running: the same read
    assert "Running jobs (1)" in text and f"{queued.id} " in text


def test_the_live_view_shows_a_real_jobs_progress(database_url: str) -> None:
    release = threading.Event()

    def resize(job: bgjobs.Job) -> None:
        job.set_progress(0.3, "resized 3/10")
        assert release.wait(30)

    bg = _app(database_url, resize)
    view = LiveView(bg)
    bg.add_listener(view.on_event)
    bg.start()
    try:
        bg.enqueue("resize_image")
        shown = lambda: view.refresh() or "resized 3/10" in render(view.render())  # noqa: E731
        wait_until(shown, 10, "the progress in the view")
        text = render(view.render())
    finally:
        release.set()
        view.close()
        bg.stop(timeout=5)
        bg.store.close()
    media = next(line for line in text.splitlines() if line.startswith("media "))
    assert media.split()[1:3] == ["1/3", "1"]
    assert "███░░░░░░░  30% resized 3/10" in text


def test_long_cells_are_cut_at_a_word_boundary() -> None:
    message = "RuntimeError: the SMTP server at mail.example.com refused the connection"
    cut = clip_words(Text(message), 40)
    assert cut.plain == "RuntimeError: the SMTP server at…"
    assert cut.cell_len <= 40 and message.startswith(cut.plain.removesuffix("…"))
    assert clip_words(Text("unbreakable" * 10), 12).plain == "unbreakable…"
    assert clip_words(Text("short"), 40).plain == "short"
    events = [EventRow(NOW, "WARN", f"JobFailed send_email#1 queue=default attempt=1 {message}")]
    text = render(dashboard(Snapshot(title="t", now=NOW, events=events)), width=80)
    line = next(line for line in text.splitlines() if "JobFailed" in line).rstrip()
    assert line.endswith("…") and len(line) <= 80
    before = line.removesuffix("…").split("WARN ", 1)[1].lstrip()
    assert events[0].text.startswith(before) and events[0].text[len(before)] == " "


def test_piped_jobs_list_keeps_every_cell_whole(database_url: str, migrated: Invoke) -> None:
    message = "asked to fail because the SMTP server at mail.example.com refused the connection"
    listed = as_json(
        migrated("enqueue", "send_email", "--queue", "default", "--payload", "{}", "--json")
    )
    store = bgjobs.open_store(database_url)
    try:
        (claimed,) = store.claim(ClaimRequest("default", "n1", 1, timedelta(minutes=1)))
        from bgjobs.adapters.base import Completion, Outcome, ProgressUpdate
        from bgjobs.job import JobError

        store.set_progress([ProgressUpdate(claimed.id, "n1", 1, Progress(0.4, "sent 4 of 10"))])
        error = JobError(at=NOW, attempt=1, type="RuntimeError", message=message)
        store.complete([Completion(claimed, "n1", Outcome.RETRY, error, timedelta(hours=1))])
    finally:
        store.close()
    table = ok(migrated("jobs", "list"))  # CliRunner: not a terminal, like a pipe
    row = next(line for line in table.splitlines() if line.lstrip().startswith(str(listed["id"])))
    assert f"RuntimeError: {message}" in row and "40% sent 4 of 10" in row
    assert "…" not in table
    shown = ok(migrated("jobs", "show", str(listed["id"])))
    assert "40% sent 4 of 10" in shown
    data = as_json(migrated("jobs", "show", str(listed["id"]), "--json"))
    assert data["progress"] == {"fraction": 0.4, "message": "sent 4 of 10"}
    assert data["meta"] == {}
