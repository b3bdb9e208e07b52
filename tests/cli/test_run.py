"""`bgjobs run` as a real subprocess: process jobs, print events, drain on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.cli.conftest import APP_TARGET, ROOT, Invoke, as_json, ok
from tests.conftest import wait_until


class Process:
    """`python -m bgjobs.cli.main ARGS` with its stdout collected line by line."""

    def __init__(self, args: list[str], database_url: str) -> None:
        env = {**os.environ, "BGJOBS_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bgjobs.cli.main", *args],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def stop(self, timeout: float = 20) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()


Start = Callable[..., Process]


@pytest.fixture
def start(database_url: str) -> Iterator[Start]:
    started: list[Process] = []

    def make(*args: str) -> Process:
        proc = Process(list(args), database_url)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()


def _succeeded(invoke: Invoke) -> list[dict[str, object]]:
    jobs: list[dict[str, object]] = as_json(
        invoke("jobs", "list", "--state", "succeeded", "--name", "send_email", "--json")
    )
    return jobs


def test_run_processes_jobs_and_drains_on_sigterm(start: Start, invoke: Invoke) -> None:
    proc = start("run", APP_TARGET, "--no-live")
    wait_until(lambda: proc.saw("RuntimeStarted"), timeout=20, what="the runtime to start")
    ids = [
        as_json(invoke("enqueue", "send_email", "--payload", json.dumps({"n": n}), "--json"))["id"]
        for n in range(5)
    ]
    wait_until(lambda: len(_succeeded(invoke)) == 5, timeout=20, what="5 jobs to succeed")
    assert {job["id"] for job in _succeeded(invoke)} == set(ids)
    code, stderr = proc.stop()
    assert code == 0, stderr
    assert stderr == ""
    succeeded = [line for line in proc.lines if "JobSucceeded send_email#" in line]
    assert len(succeeded) == 5
    # time level description
    stamp, level, kind = succeeded[0].split()[:3]
    assert stamp.endswith("Z") and "T" in stamp and (level, kind) == ("INFO", "JobSucceeded")
    assert proc.saw("RuntimeStopping") and proc.lines[-1].split()[2] == "RuntimeStopped"
    assert ok(invoke("status")).count("no node is running") == 1


def test_run_json_lines_and_queue_filter(start: Start, invoke: Invoke) -> None:
    ok(invoke("migrate"))
    media = as_json(invoke("enqueue", "resize_image", "--queue", "media", "--json"))
    proc = start("run", APP_TARGET, "--json", "--queues", "default", "--concurrency", "1")
    wait_until(lambda: proc.saw('"RuntimeStarted"'), timeout=20, what="the runtime to start")
    ok(invoke("enqueue", "send_email", "--payload", '{"fail": true}', "--max-attempts", "1"))
    wait_until(
        lambda: proc.saw('"JobDiscarded"') or proc.saw('"JobFailed"'),
        timeout=20,
        what="the failing job to finish",
    )
    code, stderr = proc.stop()
    assert code == 0, stderr
    events = [json.loads(line) for line in proc.lines]
    assert {e["event"] for e in events} >= {"RuntimeStarted", "JobStarted", "RuntimeStopped"}
    failure = next(e for e in events if e["event"] in ("JobDiscarded", "JobFailed"))
    assert failure["level"] in ("ERROR", "WARN")
    assert failure["job"]["name"] == "send_email"
    assert failure["error"]["type"] == "RuntimeError"
    polled = {e["queue"] for e in events if e["event"] == "QueuePollingStarted"}
    assert polled == {"default"}
    untouched = as_json(invoke("jobs", "show", str(media["id"]), "--json"))
    assert untouched["state"] == "available"  # --queues default left the media queue alone


def test_run_exits_1_when_the_runtime_fails(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    """An app whose store refuses an unmigrated schema fails at start: one red line, exit 1."""
    app = tmp_path / "strict_app.py"
    app.write_text(
        "import bgjobs\n"
        f"store = bgjobs.open_store({database_url!r}, migrate=False)\n"
        "bg = bgjobs.new(store).with_queue(bgjobs.queue('q').with_worker("
        "bgjobs.worker('w', print))).build()\n"
    )
    if backend == "sqlite":
        Path(database_url.removeprefix("sqlite:///")).touch()
    result = subprocess.run(
        [sys.executable, "-m", "bgjobs.cli.main", "run", f"{app}:bg", "--no-live"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: the bgjobs schema in ")
    assert "bgjobs migrate" in result.stderr and "Traceback" not in result.stderr


def test_second_sigterm_during_the_drain_still_exits_cleanly(start: Start, invoke: Invoke) -> None:
    proc = start("run", APP_TARGET, "--no-live")
    wait_until(lambda: proc.saw("RuntimeStarted"), timeout=20, what="the runtime to start")
    job = as_json(invoke("enqueue", "send_email", "--payload", '{"sleep": 2}', "--json"))
    wait_until(lambda: proc.saw(f"JobStarted send_email#{job['id']}"), what="the job to start")
    proc.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: proc.saw("RuntimeStopping"), what="the drain to begin")
    code, stderr = proc.stop()  # the second SIGTERM
    assert code == 0, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    # Drained (succeeded) or, once a second signal skips the grace period, handed back.
    state = as_json(invoke("jobs", "show", str(job["id"]), "--json"))["state"]
    assert state in {"succeeded", "available"}


def test_json_into_a_pipe_closed_early_stops_quietly(database_url: str, invoke: Invoke) -> None:
    """`bgjobs run APP --json | head -1`: once the reader is gone, drain and exit 0, silently."""
    ok(invoke("migrate"))
    env = {**os.environ, "BGJOBS_DATABASE_URL": database_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bgjobs.cli.main", "run", APP_TARGET, "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = json.loads(proc.stdout.readline())
        proc.stdout.close()  # like `head -1` exiting after its line
        assert first["event"]
        # Events from here on meet a closed pipe.
        ok(invoke("enqueue", "send_email", "--queue", "default", "--payload", '{"n": 1}'))
        code = proc.wait(timeout=30)
        stderr = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, stderr
    assert stderr == ""
    # The job was not lost: it ran, or was handed back by the drain.
    [job] = as_json(invoke("jobs", "list", "--name", "send_email", "--json"))
    assert job["state"] in {"succeeded", "available"}
