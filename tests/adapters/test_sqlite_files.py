"""Where a SQLite database may live: a missing directory is refused (a typo must not start an
empty database elsewhere) unless asked to create it, and a database this process may not write
can still be read by the reading commands.

Tests run as root here and in CI, and root ignores permission bits, so "read-only" is made with
the immutable attribute (``chattr +i``), which binds root too; as another user, chmod does.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.cli.conftest import invoke_cli, ok
from tests.conftest import wait_until

import bgjobs
from bgjobs.adapters.sqlite import files
from bgjobs.errors import ConfigError


def test_a_missing_directory_is_refused_naming_it_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    store = bgjobs.sqlite(missing / "jobs.db")
    with pytest.raises(ConfigError) as caught:
        store.open()
    message = str(caught.value)
    assert f"the directory {missing} of the SQLite database" in message
    assert f"mkdir -p {missing}" in message and "create_dirs=True" in message
    assert not missing.exists()


def test_create_dirs_creates_the_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "jobs.db"
    store = bgjobs.sqlite(path, create_dirs=True)
    store.open()
    store.close()
    assert path.is_file()


def test_the_cli_refuses_a_missing_directory_the_same_way(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    result = invoke_cli("migrate", "--database", f"sqlite:///{missing / 'jobs.db'}")
    assert result.exit_code == 1
    assert f"mkdir -p {missing}" in result.stderr
    assert not missing.exists()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a file or a directory) read-only for this process, even as root."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(
            f"cannot make {path} read-only for root here: `chattr +i` failed "
            f"({made.stderr.strip()}); this filesystem has no immutable attribute"
        )
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def make_database(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "ro" / "jobs.db"
    path.parent.mkdir()
    bg = (
        bgjobs.new(bgjobs.sqlite(path))
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )
    job = bg.enqueue("w", {"hello": "world"})
    bg.store.close()  # the last connection away: SQLite removes the -wal and -shm files
    return path, job.id


@pytest.mark.parametrize("what", ["directory", "file"])
def test_reading_commands_work_on_a_read_only_database(tmp_path: Path, what: str) -> None:
    path, job_id = make_database(tmp_path)
    url = f"sqlite:///{path}"
    with read_only(path.parent if what == "directory" else path):
        status = json.loads(ok(invoke_cli("status", "--json", "--database", url)))
        assert [(q["queue"], q["available"]) for q in status["queues"]] == [("q", 1)]
        listed = json.loads(ok(invoke_cli("jobs", "list", "--json", "--database", url)))
        assert [job["id"] for job in listed] == [job_id]
        assert "hello" in ok(invoke_cli("jobs", "show", str(job_id), "--database", url))
        # A write says why it cannot, and what to do.
        refused = invoke_cli("jobs", "delete", str(job_id), "--database", url)
        assert refused.exit_code == 1
        assert "this process may only read it" in refused.stderr
        assert "write access to the file and its directory" in refused.stderr
    assert bgjobs.sqlite(path).get_job(job_id) is not None


def test_the_wal_starts_over_while_writes_never_stop(tmp_path: Path) -> None:
    """A PASSIVE checkpoint alone never lets the log start over under continuous writes: the
    -wal file (and its -shm index, mapped into memory) grew without bound."""
    path = tmp_path / "jobs.db"
    wal = tmp_path / "jobs.db-wal"
    bg = (
        bgjobs.new(bgjobs.sqlite(path))
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )
    stop = threading.Event()
    blob = "x" * 20_000

    def write() -> None:
        while not stop.is_set():
            bg.enqueue_many([("w", {"blob": blob})] * 50)  # about 1 MB per transaction

    def wal_size() -> int:
        return wal.stat().st_size if wal.exists() else 0

    with bg:
        writer = threading.Thread(target=write)
        writer.start()
        try:
            grown = 2 * files.JOURNAL_SIZE_LIMIT
            wait_until(lambda: wal_size() > grown, 60, f"the WAL to pass {grown} bytes")
            wait_until(
                lambda: wal_size() <= files.JOURNAL_SIZE_LIMIT,
                30,
                "the WAL to start over (and be cut back) while writes go on",
            )
        finally:
            stop.set()
            writer.join(30)


def test_a_memory_store_keeps_its_file_until_it_is_collected() -> None:
    """stop() closes the store; a :memory: store must come back with its jobs on next use."""
    store = bgjobs.sqlite(":memory:")
    bg = (
        bgjobs.new(store)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )
    first = bg.enqueue("w", None)
    bg.start()
    bg.stop()
    later = bg.enqueue("w", None)
    assert store.get_job(first.id) is not None and store.get_job(later.id) is not None
    directory = store.path.parent  # type: ignore[attr-defined]
    store.close()
    del bg, store
    gc.collect()
    assert not directory.exists()
