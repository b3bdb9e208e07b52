"""`bgjobs schedules TARGET` (an app's scheduled jobs) and `bgjobs cron EXPR` (a preview)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args
from zoneinfo import ZoneInfo

import click
from rich.console import Console

from bgjobs.cli.loading import load_runtime
from bgjobs.cli.output import CliUsageError, print_json
from bgjobs.cli.render import new_table, relative, schedule_table
from bgjobs.errors import ScheduleError
from bgjobs.schedules import GapChoice, RepeatChoice, next_times
from bgjobs.schedules import cron as parse_cron


@click.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def schedules(target: str, as_json: bool) -> None:
    """Show an app's scheduled jobs: next run, last outcome.

    Reads the app's own database; nothing is started.

    \b
    Example:
      bgjobs schedules examples/cli_app.py:bg
    """
    bg = load_runtime(target)
    try:
        infos = bg.schedules()
        now = bg.store.now()
    finally:
        bg.store.close()
    if as_json:
        print_json(infos)
        return
    if not infos:
        click.echo(f"{target} has no scheduled jobs")
        return
    Console().print(schedule_table(infos, now))
    if any(info.next_run_at is None for info in infos):
        click.echo("A next run shows '-' until `bgjobs run` registers the schedule.")


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
