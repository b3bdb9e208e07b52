"""A bad stored row, or bad text from a handler, fails only its own job.

SQLite stores whatever bytes another tool writes, including text that is not valid UTF-8, which
Python cannot decode. Postgres refuses such text on input, but a handler's error may still hold
text it cannot store (a NUL, a lone surrogate). Either way the other jobs run, the bad job ends
with a recorded outcome, and the CLI can find, show and delete it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from tests.cli.conftest import invoke_cli, ok
from tests.conftest import wait_until

import bgjobs
from bgjobs import Store
from bgjobs.job import JobState

INVALID_UTF8 = "CAST(X'80FF' AS TEXT)"


class Runs:
    """A handler that records payloads; jobs with {"fail_once": true} fail their first attempt."""

    def __init__(self) -> None:
        self.seen: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, job: bgjobs.Job) -> None:
        with self._lock:
            self.seen.append(job.payload)
        if isinstance(job.payload, dict) and job.payload.get("fail_once") and job.attempt == 1:
            raise RuntimeError("first attempt fails")


def runtime(store: Store, runs: Runs) -> bgjobs.BgJobs:
    return (
        bgjobs.new(store)
        # A row whose name is unreadable has no worker anywhere: it waits as unserved (it is
        # never claimed, so it wedges nothing), then fails; here after a short wait.
        .with_unknown_worker_timeout(0.5)
        .with_heartbeat(0.2, 1.0)
        .with_queue(
            bgjobs.queue("q")
            .with_max_concurrent_jobs(4)
            .with_backoff(bgjobs.constant(timedelta(milliseconds=10)))
            .with_worker(bgjobs.worker("w", runs))
        )
        .build()
    )


def corrupt(path: Path, job_id: int, column: str) -> None:
    """What another tool might do: store bytes that are not UTF-8 in a text column."""
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE bgjobs_jobs SET {column} = {INVALID_UTF8} WHERE id = ?", (job_id,))


@pytest.mark.parametrize("column", ["payload", "name", "errors"])
def test_invalid_utf8_in_a_sqlite_row_fails_only_that_job(tmp_path: Path, column: str) -> None:
    path = tmp_path / "jobs.db"
    store = bgjobs.sqlite(path)
    runs = Runs()
    bg = runtime(store, runs)
    before = bg.enqueue("w", {"i": 0})  # enqueued before the bad row: it must run too
    bad = bg.enqueue("w", {"i": 1, "fail_once": column == "errors"})
    after = [bg.enqueue("w", {"i": i}) for i in range(2, 7)]
    corrupt(path, bad.id, column)
    with bg:
        wait_until(
            lambda: all(
                (job := store.get_job(j.id)) is not None and job.state.is_finished
                for j in [before, bad, *after]
            ),
            20,
            "every job to finish",
        )
    for job in [before, *after]:
        stored = store.get_job(job.id)
        assert stored is not None and stored.state is JobState.SUCCEEDED, stored
    stored = store.get_job(bad.id)
    assert stored is not None
    if column == "payload":
        assert stored.state is JobState.DISCARDED
        error = stored.errors[-1]
        assert error.type == "PayloadError"
        assert f"job {bad.id} (w)" in error.message and "not valid UTF-8" in error.message
    elif column == "name":
        assert stored.state is JobState.DISCARDED
        assert stored.errors[-1].type == "UnknownWorker"
        assert stored.errors[-1].message.startswith(
            "no live node has a worker named '\ufffd\ufffd'"
        )
    else:  # an unreadable history starts afresh; the job retried and succeeded
        assert stored.state is JobState.SUCCEEDED
        assert [e.message for e in stored.errors] == ["first attempt fails"]


def test_the_cli_lists_shows_and_deletes_a_row_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = bgjobs.sqlite(path)
    bg = runtime(store, Runs())
    good = bg.enqueue("w", {"i": 0})
    bad = bg.enqueue("w", {"i": 1})
    store.close()
    for column in ("payload", "name", "queue", "errors"):
        corrupt(path, bad.id, column)
    url = f"sqlite:///{path}"
    listed = json.loads(ok(invoke_cli("jobs", "list", "--json", "--database", url)))
    assert sorted(job["id"] for job in listed) == [good.id, bad.id]
    shown = " ".join(ok(invoke_cli("jobs", "show", str(bad.id), "--database", url)).split())
    assert "not valid UTF-8" in shown
    ok(invoke_cli("status", "--database", url))
    deleted = ok(invoke_cli("jobs", "delete", str(bad.id), "--database", url))
    assert f"deleted job {bad.id}" in deleted
    listed = json.loads(ok(invoke_cli("jobs", "list", "--json", "--database", url)))
    assert [job["id"] for job in listed] == [good.id]


def test_text_a_database_cannot_hold_in_a_handler_error_fails_only_that_job(store: Store) -> None:
    """A NUL and a lone surrogate in an error message: Postgres text cannot hold either."""

    def handler(job: bgjobs.Job) -> None:
        kind = job.payload["kind"]  # type: ignore[index, call-overload]
        if kind == "nul":
            raise ValueError("a NUL \x00 in the message")
        if kind == "surrogate":
            raise ValueError("a lone \udc80 surrogate")
        if kind == "discard":
            job.discard("reason \x00 with \udc80 both")

    bg = (
        bgjobs.new(store)
        .with_queue(bgjobs.queue("q").with_max_retries(0).with_worker(bgjobs.worker("w", handler)))
        .build()
    )
    kinds = ["nul", "surrogate", "discard", "ok"]
    jobs = bg.enqueue_many([("w", {"kind": k, "text": "NUL \x00 inside"}) for k in kinds])
    with bg:
        wait_until(
            lambda: all(
                (job := store.get_job(j.id)) is not None and job.state.is_finished for j in jobs
            ),
            20,
            "every outcome to be written",
        )
    states = {}
    for kind, job in zip(kinds, jobs, strict=True):
        stored = store.get_job(job.id)
        assert stored is not None
        states[kind] = stored.state
        assert stored.payload == {"kind": kind, "text": "NUL \x00 inside"}
        for error in stored.errors:
            error.message.encode("utf-8")  # readable, printable text
    assert states == {
        "nul": JobState.FAILED,
        "surrogate": JobState.FAILED,
        "discard": JobState.DISCARDED,
        "ok": JobState.SUCCEEDED,
    }
