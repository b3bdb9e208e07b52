"""Rich tables shared by `bgjobs status` and the live view of `bgjobs run`.

Everything here is a pure function of plain data, so the views are easy to test. Two rules keep
the views readable: numeric columns have a minimum width, so a count that grows a digit does
not shift the table; and a long text cell is never cut mid-word: on a terminal it is cut at a
word boundary with "…" (``Clipped``), and into a pipe it wraps, so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bgjobs.adapters.base import (
    NodeInfo,
    Occurrence,
    QueueStats,
    ScheduleRecord,
    WaitingName,
    describe_offers,
)
from bgjobs.job import Job, Progress
from bgjobs.runtime.app import ScheduleInfo

OUTCOME_STYLES = {"succeeded": "green", "failed": "red", "discarded": "red", "cancelled": "yellow"}
LEVEL_STYLES = {"ERROR": "red", "WARN": "yellow", "INFO": ""}


@dataclass(frozen=True)
class QueueRow:
    stats: QueueStats
    slots: tuple[int, int] | None = None  # live view: (in handlers on this node, max)
    throughput: float | None = None  # live view: jobs/s finished by this node lately


@dataclass(frozen=True)
class Tally:
    """How many events of one kind this node saw lately (the live view's activity line)."""

    kind: str
    count: int
    level: str = "INFO"


@dataclass(frozen=True)
class EventRow:
    at: datetime
    level: str
    text: str


@dataclass(frozen=True)
class Snapshot:
    """Everything one frame of the live view shows."""

    title: str
    now: datetime
    queues: Sequence[QueueRow] = ()
    schedules: Sequence[ScheduleInfo] = ()
    nodes: Sequence[NodeInfo] = ()
    events: Sequence[EventRow] = ()
    running: Sequence[Job] = ()  # the newest running jobs (all nodes), with their progress
    running_total: int = 0  # how many run in all
    activity: Sequence[Tally] = ()
    this_node: str | None = None
    problem: str | None = None  # e.g. the last status query failed
    footer: str = field(default="")


def new_table(title: str | None = None, *, expand: bool = False) -> Table:
    """The compact table style of every bgjobs view."""
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        show_edge=False,
        expand=expand,
    )


def relative(when: datetime, now: datetime) -> str:
    """'in 3s', '2m 5s ago', 'now'."""
    delta = when - now
    seconds = abs(delta.total_seconds())
    if seconds < 0.5:
        return "now"
    text = duration_text(timedelta(seconds=seconds))
    return f"in {text}" if delta > timedelta(0) else f"{text} ago"


def duration_text(delta: timedelta) -> str:
    seconds = round(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def clock(when: datetime) -> str:
    """An absolute UTC time, short enough for a table cell."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


ELLIPSIS = "…"
COUNT_WIDTH = 7  # digits a count may grow to before its column widens


def clip_words(text: Text, width: int) -> Text:
    """``text`` cut to ``width`` cells at a word boundary, "…" marking the cut; a first word
    longer than the width is cut where it must be."""
    if text.cell_len <= width:
        return text
    if width <= len(ELLIPSIS):
        return Text(ELLIPSIS[:width], style=text.style)
    room = width - len(ELLIPSIS)
    cut = text.plain.rfind(" ", 0, room + 1)
    if cut <= 0:
        cut = room
    head = text.divide([cut])[0]
    head.rstrip()
    head.append(ELLIPSIS, style="dim")
    return head


class Clipped:
    """A one-line cell cut at a word boundary to the width its column is given."""

    def __init__(self, text: Text | str, style: str = "") -> None:
        self.text = text if isinstance(text, Text) else Text(text, style=style)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(len(ELLIPSIS) + 8, self.text.cell_len), self.text.cell_len)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line = clip_words(self.text, options.max_width)
        line.no_wrap = True
        yield line


def long_cell(text: Text | str, *, whole: bool, style: str = "") -> Text | Clipped:
    """A cell for long text: kept whole (output into a pipe or a file, where a cut would lose
    what a reader greps for) or cut at a word boundary (a terminal)."""
    line = text if isinstance(text, Text) else Text(text, style=style)
    return line if whole else Clipped(line)


WIDEST = 100_000  # cells: a whole line into a pipe is never cut, however long


def print_table(table: Table, *, whole: bool) -> None:
    """Print to stdout: at the terminal's width, or ``whole``, as wide as the widest row (into
    a pipe, where rich would otherwise assume 80 columns and cut or fold every long cell)."""
    if not whole:
        Console().print(table)
        return
    console = Console(width=WIDEST)
    width = Measurement.get(console, console.options, table).maximum
    Console(width=max(width, 1)).print(table)


def progress_text(progress: Progress | None, *, bar: int = 0) -> Text:
    """'40% resized 4/10', with a bar of ``bar`` cells in front when asked."""
    if progress is None:
        return Text("")
    out = Text()
    if bar:
        done = round(progress.fraction * bar)
        out.append("█" * done, style="green")
        out.append("░" * (bar - done), style="dim")
        out.append(" ")
    out.append(f"{progress.fraction:>4.0%}", style="bold")
    if progress.message:
        out.append(f" {progress.message}")
    return out


def when_cell(when: datetime | None, now: datetime) -> Text:
    if when is None:
        return Text("-", style="dim")
    return Text.assemble((relative(when, now), "bold"), (f"  {clock(when)}", "dim"))


def _count(value: int, style: str = "") -> Text:
    return Text(str(value), style=style if value else "dim")


def queue_table(rows: Sequence[QueueRow], *, live: bool = False) -> Table:
    """``live`` adds this node's slots and throughput (the `bgjobs run` view)."""
    table = new_table("Queues")
    table.add_column("queue", min_width=12)
    counts = ["running", "available", "scheduled", "failed", "ok 1m", "failed 1m"]
    for name in (["slots", *counts, "jobs/s"] if live else counts):
        table.add_column(name, justify="right", min_width=max(len(name), COUNT_WIDTH))
    for row in rows:
        stats = row.stats
        cells: list[Text] = [Text(stats.queue, style="bold cyan")]
        if live:
            if row.slots is None:  # a queue this node does not run
                cells.append(Text("-", style="dim"))
            else:
                used, limit = row.slots
                cells.append(Text(f"{used}/{limit}", style="bold" if used else "dim"))
        cells += [
            _count(stats.running, "bold"),
            _count(stats.available),
            _count(stats.scheduled),
            _count(stats.failed, "red"),
            _count(stats.succeeded_recent, "green"),
            _count(stats.failed_recent, "red"),
        ]
        if live:
            rate = row.throughput or 0.0
            cells.append(Text(f"{rate:.1f}", style="" if rate else "dim"))
        table.add_row(*cells)
    if not rows:
        table.add_row(Text("no jobs yet", style="dim"))
    return table


def schedule_table(rows: Sequence[ScheduleInfo], now: datetime) -> Table:
    """Each schedule: next run (or paused/removed), the newest entry of its history (a run's
    outcome, or a skip), and how late its last run started."""
    table = new_table("Scheduled jobs")
    for name in ("name", "schedule", "queue", "next run (UTC)", "last outcome", "late"):
        table.add_column(
            name, no_wrap=name != "schedule", justify="right" if "late" in name else "left"
        )
    for row in rows:
        table.add_row(
            Text(row.name, style="bold"),
            row.schedule,
            row.queue,
            _next_cell(row, now),
            _last_outcome_cell(row, now),
            Text("-", style="dim") if row.lateness is None else Text(lateness_text(row.lateness)),
        )
    return table


def _serves(node: NodeInfo) -> str:
    """A node's queues, each with the workers it runs there: ``work (a, b), scheduled (tick)``."""
    if not node.workers:
        return ", ".join(node.queues) or "-"
    return ", ".join(f"{queue} ({', '.join(names)})" for queue, names in node.workers.items())


def _next_cell(row: ScheduleInfo, now: datetime) -> Text:
    if row.removed_at is not None:
        return Text.assemble(("removed", "bold red"), (f" {relative(row.removed_at, now)}", "dim"))
    if row.paused:
        until = "" if row.paused_until is None else f" until {clock(row.paused_until)}"
        return Text.assemble(("paused", "bold yellow"), (until, "dim"))
    return when_cell(row.next_run_at, now)


def _last_outcome_cell(row: ScheduleInfo, now: datetime) -> Text:
    if row.running:
        return Text("running", style="bold yellow")
    record = row.last_record
    if record is not None:
        text, at = occurrence_text(record), record.recorded_at
    elif row.last_outcome:  # it ran before its history was kept
        text = Text(row.last_outcome, style=OUTCOME_STYLES.get(row.last_outcome, ""))
        at = row.last_finished_at
    else:
        return Text("never ran", style="dim")
    if at is not None:
        text.append(f" {relative(at, now)}", style="dim")
    return text


_SKIPS = {
    Occurrence.COALESCED: "coalesced",
    Occurrence.SKIPPED_MISSED: "skipped: missed",
    Occurrence.SKIPPED_OVERLAP: "skipped: overlap",
    Occurrence.SKIPPED_PAUSED: "skipped: paused",
    Occurrence.REMOVED: "removed",
}


def occurrence_text(record: ScheduleRecord) -> Text:
    """'succeeded', 'failed', 'skipped: paused', 'coalesced into #12', 'skipped: #11 still
    going'..."""
    if record.outcome is Occurrence.RAN:
        result = record.result or "ran"
        text = Text(result, style=OUTCOME_STYLES.get(result, ""))
    elif record.outcome is Occurrence.COALESCED and record.job_id is not None:
        text = Text(f"coalesced into #{record.job_id}", style="cyan")
    elif record.outcome is Occurrence.SKIPPED_OVERLAP and record.job_id is not None:
        text = Text(f"skipped: #{record.job_id} still going", style="yellow")
    else:
        style = "yellow" if record.outcome is not Occurrence.REMOVED else "red"
        text = Text(_SKIPS[record.outcome], style=style)
    if record.manual:
        text.append(" (run now)", style="dim")
    return text


def history_table(name: str, records: Sequence[ScheduleRecord]) -> Table:
    """`bgjobs schedules history NAME`: one line per due time, or per span of them."""
    table = new_table(f"History of {name} (newest first)")
    for column in ("due (UTC)", "n", "outcome", "late", "took"):
        table.add_column(column, no_wrap=True, justify="left" if column in _LEFT else "right")
    # The node id is the one column that gives way on narrow screens.
    table.add_column("node", overflow="ellipsis", min_width=8)
    for record in records:
        due = clock(record.due_at)
        if record.last_due_at is not None:
            last = clock(record.last_due_at)
            due += " .. " + (last[11:] if last[:10] == due[:10] else last)
        took = None
        if record.started_at is not None and record.recorded_at is not None:
            took = record.recorded_at - record.started_at
        outcome = occurrence_text(record)
        if record.outcome is Occurrence.RAN:
            outcome = Text(f"#{record.job_id} ", style="dim") + outcome
        table.add_row(
            due,
            "many" if record.occurrences is None else str(record.occurrences),
            outcome,
            "" if record.lateness is None else lateness_text(record.lateness),
            "" if took is None else lateness_text(took).lstrip("+"),
            record.node or "",
        )
    return table


_LEFT = {"due (UTC)", "outcome"}


def lateness_text(delta: timedelta) -> str:
    """'+4ms', '+1.25s', '+2m 5s': how long after its due time a run started."""
    seconds = delta.total_seconds()
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{sign}{seconds:.2f}s"
    return sign + duration_text(timedelta(seconds=seconds))


def node_table(nodes: Sequence[NodeInfo], now: datetime, this_node: str | None = None) -> Table:
    table = new_table("Nodes")
    table.add_column("node")
    table.add_column("queues (workers)")
    table.add_column("up", min_width=7)  # "59m 59s"
    table.add_column("heartbeat", min_width=11)  # "59m 59s ago"
    for node in nodes:
        label = Text(node.id, style="bold")
        if node.id == this_node:
            label.append(" (this)", style="green")
        table.add_row(
            label,
            _serves(node),
            duration_text(max(now - node.started_at, timedelta(0))),
            relative(node.heartbeat_at, now),
        )
    if not nodes:
        table.add_row(Text("no node is running", style="dim"))
    return table


def waiting_table(
    waiting: Sequence[WaitingName], nodes: Sequence[NodeInfo], now: datetime
) -> Group:
    """Due jobs that no running node has a worker for, and what the nodes do run
    (`bgjobs status`)."""
    table = new_table("Waiting for a worker")
    for name in ("queue", "name", "jobs", "due since"):
        table.add_column(name, justify="right" if name == "jobs" else "left")
    for row in waiting:
        table.add_row(
            Text(row.queue, style="bold cyan"),
            Text(row.name, style="bold yellow"),
            str(row.count),
            when_cell(row.since, now),
        )
    offered = f"No running node has these workers. Running nodes have {describe_offers(nodes)}."
    return Group(table, Text(offered, style="dim"))


RUNNING_ROWS = 5  # running jobs the live view lists (the newest; the title counts them all)


def running_table(jobs: Sequence[Job], total: int, now: datetime) -> Table:
    """The newest running jobs (all nodes) with how long they have run and their progress."""
    shown = f"{len(jobs)} of {total}" if total > len(jobs) else str(total)
    table = new_table(f"Running jobs ({shown})")
    table.add_column("id", justify="right", min_width=COUNT_WIDTH)
    table.add_column("name", min_width=12)
    table.add_column("queue", min_width=8)
    table.add_column("for", justify="right", min_width=7)
    table.add_column("node", min_width=12)
    table.add_column("progress", min_width=26)  # a 10-cell bar, the percentage, the message
    for job in jobs:
        started = job.reserved_at or now
        table.add_row(
            str(job.id),
            Text(job.name, style="bold"),
            job.queue,
            duration_text(max(now - started, timedelta(0))),
            Clipped(Text(job.reserved_by or "-", style="dim")),
            Clipped(progress_text(job.progress, bar=10)) if job.progress else Text("-", "dim"),
        )
    return table


def activity_line(tallies: Sequence[Tally]) -> Text:
    """'last minute on this node: 120 JobSucceeded · 2 JobCancelled · 1 JobRescued'."""
    line = Text("last minute on this node: ", style="dim")
    if not tallies:
        line.append("nothing yet", style="dim")
    for index, tally in enumerate(tallies):
        if index:
            line.append(" · ", style="dim")
        line.append(str(tally.count), style="bold " + LEVEL_STYLES.get(tally.level, ""))
        line.append(f" {tally.kind}", style=LEVEL_STYLES.get(tally.level, ""))
    return line


def event_table(events: Sequence[EventRow]) -> Table:
    table = Table(
        title="Recent events",
        title_justify="left",
        title_style="bold",
        show_header=False,
        box=None,
        padding=(0, 1),
    )
    table.add_column("at", style="dim", no_wrap=True, min_width=12)
    table.add_column("level", no_wrap=True, min_width=5)
    table.add_column("event")  # wrapable: rich narrows it first; Clipped keeps it one line
    for event in events:
        style = LEVEL_STYLES.get(event.level, "")
        table.add_row(
            event.at.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3],
            Text(event.level, style=style),
            Clipped(event.text, style=style),
        )
    if not events:
        table.add_row("", "", Text("waiting for events...", style="dim"))
    return table


def status_view(
    queues: Sequence[QueueRow],
    schedules: Sequence[ScheduleInfo],
    nodes: Sequence[NodeInfo],
    now: datetime,
    this_node: str | None = None,
    *,
    live: bool = False,
) -> Group:
    """Queues, scheduled jobs (if any) and nodes: `bgjobs status`, and the live view's body."""
    parts: list[RenderableType] = [queue_table(queues, live=live)]
    if schedules:
        parts += [Text(""), schedule_table(schedules, now)]
    parts += [Text(""), node_table(nodes, now, this_node)]
    return Group(*parts)


def dashboard(snapshot: Snapshot) -> Group:
    """One frame of the live view."""
    header = Text.assemble(
        (snapshot.title, "bold"), ("  ", ""), (clock(snapshot.now), "dim"), (" UTC", "dim")
    )
    parts: list[RenderableType] = [header, Text("")]
    if snapshot.problem:
        parts.append(Text(snapshot.problem, style="bold red"))
    parts.append(
        status_view(
            snapshot.queues,
            snapshot.schedules,
            snapshot.nodes,
            snapshot.now,
            snapshot.this_node,
            live=True,
        )
    )
    if snapshot.running:
        parts += [Text(""), running_table(snapshot.running, snapshot.running_total, snapshot.now)]
    parts += [Text(""), activity_line(snapshot.activity), event_table(snapshot.events)]
    if snapshot.footer:
        parts.append(Text(snapshot.footer, style="dim"))
    return Group(*parts)
