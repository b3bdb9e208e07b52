"""`bgjobs run --metrics-port`: a real subprocess scraped over HTTP while it runs jobs."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from tests.cli.conftest import APP_TARGET, Invoke, as_json, ok
from tests.cli.test_run import Start, start  # noqa: F401 - the fixture
from tests.conftest import wait_until
from tests.integrations.test_prometheus import Samples, parse, value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_scrape(port: int) -> Samples | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return parse(response.read().decode())
    except OSError:
        return None


@pytest.mark.slow
def test_bgjobs_run_serves_metrics_over_http(start: Start, invoke: Invoke) -> None:  # noqa: F811
    ok(invoke("migrate"))
    port = free_port()
    proc = start("run", APP_TARGET, "--no-live", "--metrics-port", str(port))
    wait_until(lambda: proc.saw("RuntimeStarted"), 30, "the runtime to start")
    wait_until(lambda: http_scrape(port) is not None, 30, "the metrics endpoint")
    for n in range(4):
        ok(invoke("enqueue", "send_email", "--payload", json.dumps({"n": n})))
    failing = ["--payload", '{"fail": true}', "--max-attempts", "1"]
    ok(invoke("enqueue", "send_email", *failing))
    later = as_json(invoke("enqueue", "resize_image", "--queue", "media", "--in", "1h", "--json"))

    def counted(samples: Samples | None, outcome: str) -> float:
        email = {"queue": "default", "worker": "send_email"}
        return 0.0 if samples is None else value(samples, "bgjobs_jobs_total", **email,
                                                 outcome=outcome)  # fmt: skip

    wait_until(
        lambda: counted(s := http_scrape(port), "succeeded") == 4 and counted(s, "failed") == 1,
        30,
        "4 successes and 1 failure on /metrics",
    )
    samples = http_scrape(port)
    assert samples is not None
    email = {"queue": "default", "worker": "send_email"}
    assert value(samples, "bgjobs_job_run_seconds_count", **email) == 5
    assert value(samples, "bgjobs_job_queue_wait_seconds_count", **email) == 5
    # enqueued by other processes (the CLI): counted in the database gauges, not as enqueued here
    assert value(samples, "bgjobs_jobs_enqueued_total", **email) == 0

    def gauge(samples: Samples | None, queue: str, state: str) -> float:
        return -1 if samples is None else value(samples, "bgjobs_queue_jobs", queue=queue,
                                                state=state)  # fmt: skip

    wait_until(
        lambda: (
            gauge(s := http_scrape(port), "default", "failed") == 1
            and gauge(s, "media", "scheduled") == 1
        ),
        30,
        "the database gauges (read at most every 5 s)",
    )
    assert "process_cpu_seconds_total" in {name for name, _ in samples}  # the default registry
    code, stderr = proc.stop()
    assert code == 0, stderr
    assert f"Prometheus metrics on http://127.0.0.1:{port}/metrics" in stderr
    assert later["state"] == "scheduled"


def test_a_port_in_use_is_a_clear_error(invoke: Invoke) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("run", APP_TARGET, "--no-live", "--metrics-port", str(port))
    assert result.exit_code == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.output
    assert "pick another --metrics-port" in result.output
