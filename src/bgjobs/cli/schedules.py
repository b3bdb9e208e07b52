"""`bgjobs schedules ...` (list, history, pause, resume, run) and `bgjobs cron EXPR` (a preview)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

import click
from rich.console import Console

from bgjobs.cli.database import connected, database_option
from bgjobs.cli.loading import load_runtime
from bgjobs.cli.output import CliUsageError, print_json
from bgjobs.cli.params import AWARE_DATETIME, DURATION, POSITIVE_BIGINT, UTF8_TEXT
from bgjobs.cli.render import clock, history_table, new_table, relative, schedule_table
from bgjobs.errors import ConfigError, ScheduleError
from bgjobs.runtime import schedule_control
from bgjobs.runtime.app import ScheduleInfo
from bgjobs.schedules import GapChoice, RepeatChoice, next_times
from bgjobs.schedules import cron as parse_cron


class SchedulesGroup(click.Group):
    """`bgjobs schedules TARGET` (the form before the subcommands) still lists an app's
    schedules: a first argument that is no subcommand but looks like a TARGET means `list`."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and ":" in args[0]:
            return "list", self.commands["list"], args
        return super().resolve_command(ctx, args)


@click.group(cls=SchedulesGroup)
def schedules() -> None:
    """List, inspect and steer scheduled jobs.

    Each subcommand works through the database (--database URL or BGJOBS_DATABASE_URL), so it
    steers every node at once, from any machine; none needs the app.

    \b
    Examples:
      bgjobs schedules list
      bgjobs schedules history cleanup --limit 20
      bgjobs schedules pause cleanup --for 2h
      bgjobs schedules resume cleanup
      bgjobs schedules run cleanup
    """


@schedules.command("list")
@click.argument("target", required=False)
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_schedules(target: str | None, database_url: str | None, as_json: bool) -> None:
    """Show scheduled jobs: next run (or paused), last outcome, how late the last run started.

    With TARGET, an app's scheduled jobs as its code defines them (read from the app's own
    database; nothing is started). Without, every schedule the database knows.

    \b
    Examples:
      bgjobs schedules list
      bgjobs schedules list examples/cli_app.py:bg
    """
    if target is not None:
        bg = load_runtime(target)
        try:
            infos = bg.schedules()
            now = bg.store.now()
        finally:
            bg.store.close()
        empty = f"{target} has no scheduled jobs"
    else:
        with connected(database_url) as store:
            now = store.now()
            infos = [ScheduleInfo.from_state(state, now) for state in store.schedule_states()]
        empty = f"no schedule is registered in {store.display_url}"
    if as_json:
        print_json(infos)
        return
    if not infos:
        click.echo(empty)
        return
    Console().print(schedule_table(infos, now))
    if any(info.next_run_at is None and not (info.paused or info.removed_at) for info in infos):
        click.echo("A next run shows '-' until `bgjobs run` registers the schedule.")


@schedules.command()
@click.argument("name", type=UTF8_TEXT)
@database_option
@click.option("--limit", type=POSITIVE_BIGINT, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history(name: str, database_url: str | None, limit: int, as_json: bool) -> None:
    """What became of each due time of a schedule, newest first.

    Every due time has one entry: ran (on which node, how late it started, how long it took,
    how it ended), coalesced into another run, or skipped (missed-run policy, the previous run
    still going, paused). A span of due times settled alike is one line.

    \b
    Example:
      bgjobs schedules history cleanup --limit 50
    """
    with connected(database_url) as store:
        records = schedule_control.history(store, name, min(limit, 10_000))
    if as_json:
        print_json(records)
        return
    if not records:
        click.echo(f"{name} has no history yet")
        return
    Console().print(history_table(name, records))


@schedules.command()
@click.argument("name", type=UTF8_TEXT)
@database_option
@click.option("--for", "duration", type=DURATION, metavar="DURATION", help="Pause for: 30m, 2h.")
@click.option("--until", type=AWARE_DATETIME, metavar="ISO8601", help="Pause until this time.")
def pause(
    name: str, database_url: str | None, duration: timedelta | None, until: datetime | None
) -> None:
    """Pause a schedule on every node (until resumed, or for/until a time).

    Occurrences due meanwhile are recorded as skipped while paused; a run already going
    finishes. The pause is stored in the database: it survives restarts and deploys.

    \b
    Examples:
      bgjobs schedules pause cleanup
      bgjobs schedules pause cleanup --for 2h
      bgjobs schedules pause cleanup --until 2025-01-31T09:00:00Z
    """
    if duration is not None and until is not None:
        raise click.UsageError("give either --for or --until, not both")
    with connected(database_url) as store:
        now = store.now()
        try:
            end = schedule_control.pause_until(until or duration, now)
        except ConfigError as exc:
            raise CliUsageError(str(exc)) from exc
        state = schedule_control.pause(store, name, end)
    if state.paused_until is None:
        click.echo(f"paused {name} until resumed (`bgjobs schedules resume {name}`)")
    else:
        click.echo(f"paused {name} until {clock(state.paused_until)} UTC")


@schedules.command()
@click.argument("name", type=UTF8_TEXT)
@database_option
def resume(name: str, database_url: str | None) -> None:
    """Resume a paused schedule: the next occurrence on its grid runs.

    \b
    Example:
      bgjobs schedules resume cleanup
    """
    with connected(database_url) as store:
        state = schedule_control.resume(store, name)
        now = store.now()
    upcoming = state.next_run_at
    when = (
        "" if upcoming is None else f"; next run {relative(upcoming, now)} ({clock(upcoming)} UTC)"
    )
    click.echo(f"resumed {name}{when}")


@schedules.command("run")
@click.argument("name", type=UTF8_TEXT)
@database_option
def run_now(name: str, database_url: str | None) -> None:
    """Run a schedule once now, beside its grid (its regular run keeps its time).

    A node that defines the schedule runs it; it respects the overlap choice like any run.
    One run-now run waits at a time.

    \b
    Example:
      bgjobs schedules run cleanup
    """
    with connected(database_url) as store:
        job = schedule_control.run_now(store, name)
    if job is None:
        click.echo(f"a run-now run of {name} is already waiting or running")
    else:
        click.echo(f"queued run #{job.id} of {name} on queue {job.queue!r}, due now")


@click.command()
@click.argument("expression", metavar="EXPR")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone of the schedule.")
@click.option(
    "--count",
    type=click.IntRange(1, 1000),
    default=5,
    show_default=True,
    help="How many fire times to show.",
)
@click.option(
    "--on-gap",
    type=click.Choice(get_args(GapChoice)),
    default="shift",
    show_default=True,
    help="A time skipped by a DST spring-forward: run it after the gap, or skip it.",
)
@click.option(
    "--on-repeat",
    type=click.Choice(get_args(RepeatChoice)),
    default="first",
    show_default=True,
    help="A fixed time repeated by a DST fall-back: which occurrences run.",
)
@click.option("--name", help="The scheduled job's name, which 'H' fields hash.")
def cron(
    expression: str,
    tz: str,
    count: int,
    on_gap: GapChoice,
    on_repeat: RepeatChoice,
    name: str | None,
) -> None:
    """Preview the next fire times of a cron expression.

    5 fields (minute hour day-of-month month day-of-week), 6 fields with seconds first, or
    @hourly, @daily, @weekly, @monthly, @yearly; also L, mon#2, L5 and H (hashed from
    --name). Prints which days match (day-of-month and day-of-week combine with OR, or
    with AND when one is written with '*').

    \b
    Examples:
      bgjobs cron "*/15 9-17 * * mon-fri" --tz Europe/Paris
      bgjobs cron "*/10 * * * * *" --count 3
      bgjobs cron "H 3 * * *" --name nightly-report
    """
    now = datetime.now(UTC)
    try:
        schedule = parse_cron(expression, tz, on_gap=on_gap, on_repeat=on_repeat, hash_id=name)
        fires = next_times(schedule, now, count)
    except ScheduleError as exc:
        raise CliUsageError(str(exc)) from exc
    zone = ZoneInfo(tz)
    table = new_table(schedule.describe())
    table.add_column("#", justify="right")
    table.add_column(f"local ({tz})")
    table.add_column("UTC")
    table.add_column("from now")
    for index, fire in enumerate(fires, start=1):
        table.add_row(
            str(index),
            fire.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z"),
            fire.strftime("%Y-%m-%d %H:%M:%S"),
            relative(fire, now),
        )
    Console().print(table)
    click.echo(f"days: {schedule.describe_days()}")
