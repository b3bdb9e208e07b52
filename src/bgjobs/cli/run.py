"""`bgjobs run TARGET`: run an app's runtime with a live view or one line per event."""

from __future__ import annotations

import sys

import click

from bgjobs.cli.live import run_live
from bgjobs.cli.loading import load_runtime
from bgjobs.cli.output import CliError, EventPrinter
from bgjobs.cli.params import CommaList
from bgjobs.runtime.app import BgJobs


@click.command()
@click.argument("target")
@click.option(
    "--live/--no-live",
    default=None,
    help="Live dashboard, or one line per event. Default: live on a terminal.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per event (implies --no-live)."
)
@click.option(
    "--queues",
    type=CommaList(),
    metavar="A,B",
    help="Run only these queues (and the scheduled jobs on them).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    metavar="N",
    help="Override max_concurrent_jobs of every queue.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    metavar="PORT",
    help="Serve Prometheus metrics on http://HOST:PORT/metrics (needs bgjobs[prometheus]).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Address the metrics endpoint binds to (0.0.0.0: every interface).",
)
def run(
    target: str,
    live: bool | None,
    as_json: bool,
    queues: tuple[str, ...] | None,
    concurrency: int | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run an app's jobs until SIGINT/SIGTERM, then drain gracefully.

    TARGET is module:attribute or path/to/file.py:attribute, naming a built runtime
    (bgjobs.BgJobs), a builder (bgjobs.BgJobsSpec) or a zero-argument function, defined in
    that module, returning one; nothing else is called. The app defines its own database.

    \b
    Examples:
      bgjobs run myapp.jobs:bg
      bgjobs run examples/cli_app.py:bg --no-live --queues default --concurrency 2
      bgjobs run myapp.jobs:make_spec --json | jq .
      bgjobs run myapp.jobs:bg --metrics-port 9100

    Exit code 0 after a graceful stop (also when the reader of --json/--no-live output goes
    away, e.g. `| head -1`), 1 if the runtime failed.
    """
    if live and as_json:
        raise click.UsageError("--json writes event lines; it cannot be combined with --live")
    bg = load_runtime(target, queues=queues, concurrency=concurrency)
    if metrics_port is not None:
        serve_metrics(bg, metrics_host, metrics_port)
    # bg.run() owns SIGINT/SIGTERM: the first drains, a second skips the grace period.
    if live if live is not None else (not as_json and sys.stdout.isatty()):
        run_live(bg)
    else:
        bg.add_listener(EventPrinter(as_json=as_json, on_closed=bg.request_stop))
        bg.run()


def serve_metrics(bg: BgJobs, host: str, port: int) -> None:
    """Start the /metrics endpoint for ``bg`` (a daemon thread that ends with the process)."""
    try:
        from bgjobs.integrations import prometheus
    except ImportError as exc:
        raise CliError(
            f"--metrics-port needs prometheus_client ({exc}); install it with "
            "`pip install 'bgjobs[prometheus]'`"
        ) from exc
    try:
        prometheus.start_http_server(bg, port, host)
    except OSError as exc:
        raise CliError(
            f"cannot serve metrics on {host}:{port}: {exc}; pick another --metrics-port"
        ) from exc
    click.echo(f"bgjobs: Prometheus metrics on http://{host}:{port}/metrics", err=True)
