"""The liveness lock a node holds for as long as its process lives, seen from its peers
(SQLite: an flock on a file next to the database; Postgres: a session advisory lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.conftest import PG_URL, Recorder, wait_until
from tests.support.procs import ROOT

import bgjobs
from bgjobs.adapters.base import ClaimRequest, NodeInfo, Store
from bgjobs.events import JobRescued, LivenessLost, NodeDied
from bgjobs.job import JobState, NewJob

# Holds a node's liveness lock in its own process until killed; prints the lock's key.
HOLDER = """
import sys, time
import bgjobs
store = bgjobs.open_store(sys.argv[1])
store.open()
print(store.hold_node_lock(sys.argv[2]).key, flush=True)
time.sleep(600)
"""


def holder(url: str, node_id: str) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, node_id], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    key = proc.stdout.readline().strip()
    assert key and key != "None", "the holder took its lock"
    return proc, key


def register(store: Store, node_id: str, lock_key: str | None) -> None:
    now = datetime.now(UTC)
    store.heartbeat(NodeInfo(node_id, "h", 1, now, now, ("q",), lock_key=lock_key))


def test_a_killed_nodes_lock_is_free_and_its_jobs_are_rescued_at_once(
    store: Store, database_url: str, backend: str, tmp_path: Path
) -> None:
    proc, key = holder(database_url, "h:1:dead")
    try:
        register(store, "h:1:dead", key)
        register(store, "h:2:leased", None)  # lease only: never judged by a lock
        store.insert_jobs([NewJob(queue="q", name="w", raw_payload="{}", max_attempts=1)] * 2)
        store.claim(ClaimRequest("q", "h:1:dead", 1, timedelta(minutes=5)))
        store.claim(ClaimRequest("q", "h:2:leased", 1, timedelta(minutes=5)))
        assert store.free_nodes("me") == [], "a live holder, even seen from its own host"
        assert store.rescue_nodes(["h:1:dead", "h:2:leased"]).released == []
    finally:
        proc.kill()
        proc.wait()
    wait_until(lambda: store.free_nodes("me") == ["h:1:dead"], 10, "the lock freed")
    result = store.rescue_nodes(["h:1:dead", "h:2:leased"])
    assert result.nodes == ["h:1:dead"]
    (rescued,) = result.released
    assert rescued.reserved_by == "h:1:dead" and "died" in result.errors[rescued.id].message
    back = store.get_job(rescued.id)
    assert back is not None and back.state is JobState.AVAILABLE and back.rescues == 1
    assert [n.id for n in store.list_nodes()] == ["h:2:leased"], "the dead node left"
    if backend == "sqlite":
        assert not (tmp_path / "jobs.db.nodes" / key).exists(), "its lock file is cleaned up"
    assert store.free_nodes("me") == []
    assert store.rescue_nodes(["h:1:dead"]).released == [], "rescued exactly once"


def test_sqlite_lock_files_live_next_to_the_database(
    store_factory: Callable[..., Store], backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only")
    store = store_factory()
    store.open()
    lock = store.hold_node_lock("host:12:abc")
    assert lock.key is not None and lock.problem is None
    (path,) = (tmp_path / "jobs.db.nodes").iterdir()
    assert path.name == lock.key and path.read_text() == "host:12:abc\n"
    register(store, "host:12:abc", lock.key)
    # A key that names no lock file of this database proves nothing (and is never touched).
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    register(store, "h:2:odd", "../precious.txt")
    register(store, "h:3:gone", "h_3_gone-000000000000.lock")
    assert store.free_nodes("me") == [] and outside.read_text() == "keep"
    lock.release()  # a clean stop: the node leaves the registry first, then lets go
    assert lock.key is None
    assert list((tmp_path / "jobs.db.nodes").iterdir()) == [], "a clean stop leaves nothing"


@pytest.mark.postgres
def test_a_postgres_node_takes_its_lock_back_when_its_connection_drops(
    store_factory: Callable[..., Store], backend: str
) -> None:
    """A server restart or pg_terminate_backend ends the backend holding the lock; a live node
    takes it back at once, so peers (who wait liveness_confirm) never see it dead."""
    if backend != "postgres":
        pytest.skip("Postgres only")
    import psycopg

    store = store_factory()
    store.open()
    lock = store.hold_node_lock("h:1:alive")
    assert lock.key is not None
    register(store, "h:1:alive", lock.key)
    holders = """
        SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
          AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)"""
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        (before,) = admin.execute(holders, (lock.key,)).fetchall()
        admin.execute("SELECT pg_terminate_backend(%s)", before)
        started = time.monotonic()

        def held_again() -> bool:
            rows = admin.execute(holders, (lock.key,)).fetchall()
            return len(rows) == 1 and rows[0] != before

        wait_until(held_again, 10, "the lock taken back on a new connection")
    assert time.monotonic() - started < store.liveness_confirm.total_seconds(), (
        "taken back before a peer would believe the node dead"
    )
    assert lock.key is not None and store.free_nodes("me") == []
    lock.release()


def test_a_node_that_cannot_take_its_lock_says_so_and_is_left_to_its_lease(
    store_factory: Callable[..., Store], backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only: a file where the lock directory should be")
    (tmp_path / "jobs.db.nodes").write_text("not a directory")
    store = store_factory()
    recorder = Recorder()
    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )
    with bg:
        wait_until(lambda: recorder.of(LivenessLost), 10, "LivenessLost")
        (node,) = store.list_nodes()
        assert node.lock_key is None, "peers must not probe a lock it does not hold"
        done = bg.enqueue("w")
        wait_until(lambda: (store.get_job(done.id) or done).state is JobState.SUCCEEDED, 10)
    (event,) = recorder.of(LivenessLost)
    assert "jobs.db.nodes" in event.error


def test_a_running_node_rescues_a_dead_peer_and_says_so(store: Store, database_url: str) -> None:
    recorder = Recorder()
    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("w", lambda job: None)))
        .build()
    )
    proc, key = holder(database_url, "h:1:dead")
    register(store, "h:1:dead", key)
    (job,) = store.insert_jobs([NewJob(queue="q", name="w", raw_payload="{}", max_attempts=1)])
    store.claim(ClaimRequest("q", "h:1:dead", 1, timedelta(minutes=5)))
    with bg:
        proc.kill()
        proc.wait()
        wait_until(lambda: (store.get_job(job.id) or job).state is JobState.SUCCEEDED, 10)
    (died,) = recorder.of(NodeDied)
    assert (died.node_id, died.rescued) == ("h:1:dead", 1)
    assert [e.job.id for e in recorder.of(JobRescued)] == [job.id]
