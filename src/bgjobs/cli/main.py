"""The `bgjobs` command: a click group, its top-level error handling, and ``main()``."""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass
from typing import Any

import click

from bgjobs.cli.admin import enqueue, migrate, prune, status
from bgjobs.cli.jobs import jobs
from bgjobs.cli.loading import TargetError, TargetFailed
from bgjobs.cli.output import CliError, CliUsageError
from bgjobs.cli.run import run
from bgjobs.cli.schedules import cron, schedules
from bgjobs.errors import BgJobsError


@dataclass(frozen=True)
class Settings:
    debug: bool = False


class BgJobsGroup(click.Group):
    """Turns expected failures into one red line on stderr (exit 1, or 2 for a bad TARGET);
    ``--debug`` lets them through with their traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
            if settings.debug:
                raise
            raise as_cli_error(exc) from exc


def as_cli_error(exc: Exception) -> CliError:
    """The one-line error for an exception that reached the top."""
    if isinstance(exc, TargetError):
        return CliUsageError(str(exc))
    if isinstance(exc, TargetFailed):  # the app's own code raised: its traceback helps
        return CliError(f"{exc} (run `bgjobs --debug ...` for the traceback)")
    if isinstance(exc, BgJobsError):
        return CliError(str(exc))
    if isinstance(exc, sqlite3.Error):
        return CliError(f"SQLite error: {exc}")
    psycopg = sys.modules.get("psycopg")  # only loaded when a Postgres URL was used
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return CliError(f"Postgres error: {exc}")
    return CliError(f"{type(exc).__name__}: {exc} (run `bgjobs --debug ...` for the traceback)")


@click.group(cls=BgJobsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="bgjobs", prog_name="bgjobs")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run and operate bgjobs background jobs.

    Management commands read the database from --database URL or BGJOBS_DATABASE_URL
    (sqlite:///path/to/file.db or postgresql://user@host/db). Exit codes: 0 ok, 1 runtime or
    database error, 2 usage error.

    \b
    Examples:
      bgjobs run myapp.jobs:bg
      BGJOBS_DATABASE_URL=sqlite:///app.db bgjobs jobs list --state failed
    """
    ctx.obj = Settings(debug=debug)


for command in (run, status, jobs, enqueue, migrate, prune, schedules, cron):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="bgjobs")


if __name__ == "__main__":
    main()
