"""Database commands: `status`, `enqueue`, `migrate` and `prune`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.markup import escape

from bgjobs.adapters.base import SCHEMA_VERSION, queues_running, unserved
from bgjobs.builder import DEFAULT_MAX_ATTEMPTS
from bgjobs.cli.database import connected, database_option, migrate_database, require_url
from bgjobs.cli.loading import load_runtime
from bgjobs.cli.output import CliUsageError, job_to_dict, print_json
from bgjobs.cli.params import AWARE_DATETIME, DURATION, JSON_VALUE, CommaList
from bgjobs.cli.render import (
    QueueRow,
    clock,
    duration_text,
    relative,
    status_view,
    waiting_table,
)
from bgjobs.errors import ConfigError, PayloadError, UnknownWorkerError
from bgjobs.job import FINISHED_STATES, Job, JobState
from bgjobs.job_requests import EARLIEST_RUN_AT, JobRequest, build_new_job, queue_for
from bgjobs.payload import JSON
from bgjobs.runtime.app import ScheduleInfo
from bgjobs.runtime.schedule_conflicts import conflicts

# Stands in for the routed queue while the request is checked, before the database is opened.
_ANY_QUEUE = "default"
FINISHED = tuple(s.value for s in JobState if s in FINISHED_STATES)


@click.command()
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def status(database_url: str | None, as_json: bool) -> None:
    """Show queues, scheduled jobs, running nodes and jobs waiting for a worker once.

    A due job waits for a worker when no running node has a worker for its name on its queue
    (during a rolling deploy, say); the nodes serving its queue discard it after their
    unknown-worker timeout. Running nodes that define a scheduled job differently are listed
    too (the newest one's definition runs).

    \b
    Example:
      bgjobs status --database sqlite:///app.db
    """
    with connected(database_url) as store:
        now = store.now()
        stats = store.queue_stats(timedelta(minutes=1))
        schedules = store.schedule_states()
        nodes = store.list_nodes()
        waiting = unserved(store.waiting_names(), nodes)
    disagree = conflicts(nodes)
    if as_json:
        print_json(
            {
                "at": now,
                "queues": stats,
                "schedules": schedules,
                "nodes": nodes,
                "waiting_for_worker": [
                    {"queue": w.queue, "name": w.name, "jobs": w.count, "since": w.since}
                    for w in waiting
                ],
                "schedule_conflicts": disagree,
            }
        )
        return
    rows = [ScheduleInfo.from_state(s, now) for s in schedules]
    console = Console()
    console.print(status_view([QueueRow(s) for s in stats], rows, nodes, now))
    if waiting:
        console.print()
        console.print(waiting_table(waiting, nodes, now))
    for conflict in disagree:
        defined = "; ".join(f"{node}: {definition}" for node, definition in conflict.definitions)
        console.print(
            f"\n[bold yellow]{escape(conflict.schedule)}[/]: running nodes define it differently "
            f"({escape(defined)}); the newest node's definition runs: {escape(conflict.winner)}"
        )


@click.command()
@click.argument("name")
@click.option(
    "--payload",
    type=JSON_VALUE,
    default=None,
    metavar="JSON",
    help="The job's payload as JSON (default: null).",
)
@click.option(
    "--in", "delay", type=DURATION, metavar="DURATION", help="Run after this delay: 30s, 5m, 1h30m."
)
@click.option(
    "--at",
    type=AWARE_DATETIME,
    metavar="ISO8601",
    help="Run at this time: 2025-01-31T09:00:00Z or ...+01:00.",
)
@click.option("--priority", type=int, default=0, show_default=True, help="Lower numbers run first.")
@click.option(
    "--queue",
    default=None,
    help="Queue to put the job on (default: the queue whose live nodes run NAME; not with --app).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=None,
    help=f"Attempts before the job fails (default {DEFAULT_MAX_ATTEMPTS}; not with --app).",
)
@click.option(
    "--app",
    "app_target",
    metavar="TARGET",
    help="Route by this app's workers (module:attribute); uses the app's database.",
)
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the new job as JSON.")
@click.pass_context
def enqueue(
    ctx: click.Context,
    name: str,
    payload: JSON,
    delay: timedelta | None,
    at: datetime | None,
    priority: int,
    queue: str | None,
    max_attempts: int | None,
    app_target: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Enqueue a job named NAME.

    Without --app the job goes straight into the database, on the queue where the running nodes
    have a worker for NAME (they publish theirs in the node registry). A name no running node
    has a worker for, or one that several queues run, is refused unless --queue names the queue.
    With --app the app routes the job to its worker's queue and refuses names it has no worker
    for.

    \b
    Examples:
      bgjobs enqueue send_email --payload '{"to": "ada@example.com"}'
      bgjobs enqueue resize_image --queue media --in 5m --priority -1
      bgjobs enqueue send_email --app examples/cli_app.py:bg --at 2025-01-31T09:00:00Z
    """
    if delay is not None and at is not None:
        raise click.UsageError("give either --in or --at, not both")
    if app_target is not None:  # the app decides these
        source = ctx.get_parameter_source("database_url")
        explicit = source is click.core.ParameterSource.COMMANDLINE
        for flag, given in (
            ("--queue", queue is not None),
            ("--max-attempts", max_attempts is not None),
            ("--database", explicit),
        ):
            if given:
                raise click.UsageError(
                    f"{flag} cannot be combined with --app: the app decides "
                    "the queue, the attempts and the database"
                )
    request = JobRequest(name, payload, delay=delay, at=at, priority=priority)
    # The library's own checks, run before anything is opened: what they refuse is a usage
    # error. They run again on the routed queue (with --app, in bg.enqueue): same answer.
    attempts = max_attempts or DEFAULT_MAX_ATTEMPTS
    try:
        build_new_job(request, queue=_ANY_QUEUE if queue is None else queue, max_attempts=attempts)
    except (ConfigError, PayloadError) as exc:
        raise CliUsageError(str(exc)) from exc
    if app_target is not None:
        bg = load_runtime(app_target)
        try:
            job = bg.enqueue_many([request])[0]
        finally:
            bg.store.close()
    else:
        with connected(database_url) as store:
            nodes = store.list_nodes()
            try:
                routed = queue_for(name, queue, nodes)
            except (ConfigError, UnknownWorkerError) as exc:
                raise CliUsageError(str(exc)) from exc
            serving = queues_running(nodes, name)
            if serving and routed not in serving:
                click.echo(
                    f"warning: no live node runs {name} on queue {routed} (it runs on "
                    f"{', '.join(serving)}); the job waits for one",
                    err=True,
                )
            new = build_new_job(request, queue=routed, max_attempts=attempts)
            job = store.insert_jobs([new])[0]
            now = store.now()
    if as_json:
        print_json(job_to_dict(job))
    else:
        click.echo(_enqueued_line(job, now if app_target is None else bg.now()))


def _enqueued_line(job: Job, now: datetime) -> str:
    when = (
        "now"
        if job.available_at <= now
        else (f"{relative(job.available_at, now)} ({clock(job.available_at)} UTC)")
    )
    return f"enqueued {job.name}#{job.id} on queue {job.queue}, runs {when}"


@click.command()
@database_option
@click.option(
    "--status", "show_status", is_flag=True, help="Only print the schema version; change nothing."
)
def migrate(database_url: str | None, show_status: bool) -> None:
    """Create or upgrade the bgjobs tables.

    Safe to run again, and from several hosts at once.

    \b
    Examples:
      bgjobs migrate --database sqlite:///app.db
      bgjobs migrate --status --database postgresql://app@db/app
    """
    if show_status:
        with connected(database_url, check=False) as store:
            version = store.schema_version()
            url = store.display_url
        if version == SCHEMA_VERSION:
            click.echo(f"schema version {version} (current) in {url}")
        elif version < SCHEMA_VERSION:
            click.echo(
                f"schema version {version}, this bgjobs needs {SCHEMA_VERSION}: "
                f"run `bgjobs migrate --database {url}`"
            )
        else:
            click.echo(
                f"schema version {version} is newer than this bgjobs ({SCHEMA_VERSION}): "
                "upgrade bgjobs"
            )
        return
    migrated, version, url = migrate_database(require_url(database_url))
    if migrated is None:
        click.echo(f"schema already at version {version} in {url}; nothing to do")
    else:
        click.echo(f"migrated {url}: schema {migrated[0]} -> {migrated[1]}")


@click.command()
@database_option
@click.option(
    "--older-than",
    type=DURATION,
    required=True,
    metavar="DURATION",
    help="Delete jobs that finished longer ago than this: 12h, 7d, 4w.",
)
@click.option(
    "--state",
    "states",
    type=CommaList(FINISHED),
    default="succeeded,cancelled",
    show_default=True,
    metavar="STATES",
    help=f"Comma-separated finished states to delete ({', '.join(FINISHED)}).",
)
def prune(database_url: str | None, older_than: timedelta, states: tuple[str, ...]) -> None:
    """Delete finished jobs from the archive.

    Failed and discarded jobs are kept unless named with --state, so nobody loses a failure
    they have not looked at yet.

    \b
    Examples:
      bgjobs prune --older-than 7d
      bgjobs prune --older-than 30d --state succeeded,cancelled,failed,discarded
    """
    # No job finished before the earliest time bgjobs stores, so a longer look-back means the
    # same; capping it keeps the cutoff inside what both stores can represent.
    look_back = min(older_than, datetime.now(UTC) - EARLIEST_RUN_AT)
    with connected(database_url) as store:
        count = store.prune(look_back, [JobState(s) for s in states])
    click.echo(
        f"pruned {count} {'job' if count == 1 else 'jobs'} "
        f"({', '.join(states)}) finished more than {duration_text(older_than)} ago"
    )
