"""`bgjobs jobs ...`: list, show, retry, cancel and delete jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from datetime import datetime

import click
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from bgjobs.adapters.base import JobFilter, Store
from bgjobs.cli.database import connected, database_option
from bgjobs.cli.output import CliError, job_to_dict, print_json
from bgjobs.cli.params import POSITIVE_BIGINT, UTF8_TEXT
from bgjobs.cli.render import (
    OUTCOME_STYLES,
    clock,
    long_cell,
    new_table,
    print_table,
    progress_text,
)
from bgjobs.errors import PayloadError
from bgjobs.job import CancelOutcome, Job, JobState

STATES = tuple(state.value for state in JobState)
STATE_STYLES = {
    **OUTCOME_STYLES,
    "running": "bold yellow",
    "available": "cyan",
    "scheduled": "blue",
}


@click.group()
def jobs() -> None:
    """List, show, retry, cancel and delete jobs.

    Each subcommand reads the database from --database URL or BGJOBS_DATABASE_URL.

    \b
    Example:
      bgjobs jobs list --state failed
    """


@jobs.command("list")
@database_option
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
@click.option("--name", type=UTF8_TEXT, help="Only jobs with this name.")
@click.option("--queue", type=UTF8_TEXT, help="Only jobs on this queue.")
@click.option("--limit", type=POSITIVE_BIGINT, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_jobs(
    database_url: str | None,
    state: str | None,
    name: str | None,
    queue: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List jobs, newest first.

    A due job that no running node has a worker for shows as waiting for a worker.

    \b
    Examples:
      bgjobs jobs list --state failed --limit 20
      bgjobs jobs list --name send_email --queue default --json
    """
    where = JobFilter(state=JobState(state) if state else None, name=name, queue=queue, limit=limit)
    with connected(database_url) as store:
        found = store.list_jobs(where)
        nodes = store.list_nodes()
    no_worker = {
        job.id
        for job in found
        if job.state is JobState.AVAILABLE and not any(n.runs(job.queue, job.name) for n in nodes)
    }
    if as_json:
        print_json(
            [job_to_dict(job) | {"waiting_for_worker": job.id in no_worker} for job in found]
        )
    else:
        whole = not Console().is_terminal  # into a pipe: one whole line per job, nothing cut
        print_table(jobs_table(found, no_worker, whole=whole), whole=whole)


@jobs.command()
@database_option
@click.argument("job_id", metavar="ID", type=POSITIVE_BIGINT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(database_url: str | None, job_id: int, as_json: bool) -> None:
    """Show one job: its payload, attempts and error history with tracebacks.

    \b
    Example:
      bgjobs jobs show 42
    """
    with connected(database_url) as store:
        job = store.get_job(job_id)
    if job is None:
        raise CliError(f"no job with id {job_id}")
    if as_json:
        print_json(job_to_dict(job))
    else:
        Console().print(job_detail(job))


@jobs.command()
@database_option
@click.argument("job_ids", metavar="[ID]...", type=POSITIVE_BIGINT, nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed, discarded or cancelled job.")
@click.option("--name", type=UTF8_TEXT, help="Only jobs with this name.")
def retry(
    database_url: str | None, job_ids: tuple[int, ...], all_failed: bool, name: str | None
) -> None:
    """Run failed, discarded or cancelled jobs again now, with their attempts reset.

    \b
    Examples:
      bgjobs jobs retry 41 42
      bgjobs jobs retry --all-failed --name send_email
    """
    if bool(job_ids) == all_failed:
        raise click.UsageError("give job IDs or --all-failed (one of the two)")
    with connected(database_url) as store:
        retried = store.retry_jobs(job_ids, all_failed=all_failed, name=name)
        missed = {job_id: store.get_job(job_id) for job_id in job_ids if job_id not in retried}
    noun = "job" if len(retried) == 1 else "jobs"
    click.echo(
        f"retried {len(retried)} {noun}"
        + (f": {', '.join(map(str, sorted(retried)))}" if retried else "")
    )
    if missed:
        raise CliError(
            "; ".join(_not_retried(job_id, job, name) for job_id, job in sorted(missed.items()))
        )


def _not_retried(job_id: int, job: Job | None, name: str | None) -> str:
    if job is None:
        return f"no job with id {job_id}"
    if name is not None and job.name != name:
        return f"job {job_id} is {job.name}, not {name}"
    return f"job {job_id} is {job.state.value}; only failed, discarded or cancelled jobs retry"


@jobs.command()
@database_option
@click.argument("job_id", metavar="ID", type=POSITIVE_BIGINT)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="For a running job: wait up to SECONDS until its node has stopped it.",
)
def cancel(database_url: str | None, job_id: int, wait_seconds: float | None) -> None:
    """Cancel a job. A waiting job is archived as cancelled at once; a running one is stopped
    by the node running it (within about a second), which archives it as cancelled and emits
    JobCancelled. Either can be retried later.

    Exit status 0: cancelled, cancel requested, or already cancelled. 1: no such job, it had
    already finished otherwise, or (--wait) it finished otherwise or did not stop in time.

    \b
    Examples:
      bgjobs jobs cancel 42
      bgjobs jobs cancel 42 --wait 10
    """
    with connected(database_url) as store:
        result = store.cancel_job(job_id)
        job = result.job
        if result.outcome is CancelOutcome.NOT_FOUND or job is None:
            raise CliError(f"no job with id {job_id}")
        if result.outcome is CancelOutcome.FINISHED:
            if job.state is JobState.CANCELLED:
                click.echo(f"job {job_id} was already cancelled")
                return
            raise CliError(
                f"job {job_id} already finished as {job.state.value}; there is nothing to cancel"
            )
        if result.outcome is CancelOutcome.CANCELLED:
            click.echo(f"cancelled {job.name}#{job.id}")
            return
        click.echo(
            f"cancel requested for {job.name}#{job.id}, running on node {job.reserved_by}: "
            "the node stops it and archives it as cancelled"
        )
        if wait_seconds is None:
            return
        final = _finished(store, job_id, wait_seconds)
    if final is None:
        raise CliError(
            f"job {job_id} has not stopped within {wait_seconds:g}s; is node "
            f"{job.reserved_by} alive (`bgjobs status`)? A dead node's jobs are rescued after "
            "its lease, then cancelled instead of run"
        )
    if final.state is not JobState.CANCELLED:
        raise CliError(
            f"job {job_id} finished as {final.state.value} before the cancel reached its node"
        )
    click.echo(f"cancelled {final.name}#{final.id}")


def _finished(store: Store, job_id: int, timeout: float) -> Job | None:
    """The job once it has finished, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        job = store.get_job(job_id)
        if job is None:
            raise CliError(f"job {job_id} was deleted while waiting for it to stop")
        if job.state.is_finished:
            return job
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


@jobs.command()
@database_option
@click.argument("job_id", metavar="ID", type=POSITIVE_BIGINT)
def delete(database_url: str | None, job_id: int) -> None:
    """Delete a waiting or finished job for good.

    \b
    Example:
      bgjobs jobs delete 42
    """
    with connected(database_url) as store:
        deleted = store.delete_job(job_id)
    if not deleted:
        raise CliError(f"no job with id {job_id}")
    click.echo(f"deleted job {job_id}")


# rendering ------------------------------------------------------------------------------------
def _when(job: Job) -> str:
    at: datetime = job.finished_at or job.reserved_at or job.available_at
    return clock(at)


def _state(job: Job) -> Text:
    text = job.state.value
    if job.cancel_requested_at is not None and not job.state.is_finished:
        text += " (cancelling)"  # its node stops it within about a second
    return Text(text, style=STATE_STYLES.get(job.state.value, ""))


def jobs_table(found: list[Job], no_worker: Collection[int] = (), *, whole: bool = False) -> Table:
    """id, name, queue, state, attempt, when, progress (when a job has some) and the last error,
    or for due jobs that no running node has a worker for (``no_worker``: their ids) a note
    saying so. On a terminal the last two share the width left and are cut at a word boundary;
    ``whole`` (output into a pipe) keeps every cell whole, one line per job, for grep."""
    table = new_table(expand=not whole)
    for column in ("id", "name", "queue", "state", "try", "at (UTC)"):
        table.add_column(column, justify="right" if column == "id" else "left", no_wrap=True)
    with_progress = any(job.progress is not None for job in found)
    if with_progress:
        table.add_column("progress", min_width=8, ratio=None if whole else 1, no_wrap=True)
    error_ratio = 2 if with_progress else 1  # an error needs more words than a progress line
    table.add_column("last error", min_width=10, ratio=None if whole else error_ratio, no_wrap=True)
    for job in found:
        error = job.errors[-1] if job.errors else None
        cells: list[RenderableType] = [
            str(job.id),
            job.name,
            job.queue,
            _state(job),
            f"{job.attempt}/{job.max_attempts}",
            _when(job),
        ]
        if with_progress:
            cells.append(long_cell(progress_text(job.progress), whole=whole))
        if job.id in no_worker:
            cells.append(Text("waiting for a worker", style="yellow"))
        else:
            message = f"{error.type}: {error.message}" if error else ""
            cells.append(long_cell(message, whole=whole, style="red"))
        table.add_row(*cells)
    if not found:
        table.add_row("", Text("no jobs", style="dim"))
    return table


def job_detail(job: Job) -> RenderableType:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, str | Text | None]] = [
        ("id", str(job.id)),
        ("name", job.name),
        ("queue", job.queue),
        ("state", _state(job)),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("priority", str(job.priority)),
        ("created", clock(job.created_at)),
        ("available", clock(job.available_at)),
        ("reserved by", job.reserved_by),
        ("lease until", clock(job.lease_expires_at) if job.lease_expires_at else None),
        ("finished", clock(job.finished_at) if job.finished_at else None),
        ("cancel asked", clock(job.cancel_requested_at) if job.cancel_requested_at else None),
        ("schedule", job.schedule),
        ("unique key", job.unique_key),
        ("progress", progress_text(job.progress, bar=20) if job.progress else None),
        *((key, value) for key, value in sorted(job.meta.items())),  # e.g. the traceparent
    ]
    for label, value in rows:
        if value is not None:
            facts.add_row(label, value)
    parts: list[RenderableType] = [facts, Text("payload", style="bold")]
    try:
        pretty = json.dumps(job.payload, indent=2, ensure_ascii=False)
        # Wrapped, never cut at the terminal's edge: an operator must see the whole payload.
        parts.append(
            Syntax(pretty, "json", theme="ansi_dark", background_color="default", word_wrap=True)
        )
    except PayloadError as exc:
        parts.append(Text(f"{job.raw_payload}\n({exc})", style="red"))
    parts.append(Text(f"errors ({len(job.errors)})", style="bold"))
    for error in job.errors:
        parts.append(
            Text.from_markup(
                f"[red]attempt {error.attempt}[/] at {clock(error.at)} UTC: "
                f"[bold red]{escape(error.type)}[/]: {escape(error.message)}"
            )
        )
        if error.traceback:
            parts.append(Text(error.traceback.rstrip(), style="dim"))
    return Group(*parts)
