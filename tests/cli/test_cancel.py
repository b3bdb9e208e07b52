"""`bgjobs jobs cancel` on waiting, running and finished jobs; its exit status says which."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tests.cli.conftest import Invoke, ok
from tests.cli.runtime_helpers import process
from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs.events import JobCancelled


@pytest.fixture
def node(database_url: str, migrated: Invoke) -> Iterator[tuple[bgjobs.BgJobs, Recorder]]:
    """A running node whose "hold" jobs run until cancelled."""
    recorder = Recorder()
    release = threading.Event()

    def hold(job: bgjobs.Job) -> None:
        while not job.cancelled and not release.is_set():
            release.wait(0.005)

    bg = (
        bgjobs.new(database_url)
        .with_event_listener(recorder)
        .with_queue(bgjobs.queue("default").with_worker(bgjobs.worker("hold", hold)))
        .build()
        .start()
    )
    yield bg, recorder
    release.set()
    bg.stop()
    bg.store.close()


def test_cancel_a_running_job_and_wait_for_its_node(
    node: tuple[bgjobs.BgJobs, Recorder], migrated: Invoke
) -> None:
    bg, recorder = node
    job = bg.enqueue("hold")
    wait_until(lambda: bg.slots()["default"][0] == 1, 10, "the job to run")
    out = ok(migrated("jobs", "cancel", str(job.id), "--wait", "10"))
    assert out.startswith(f"cancel requested for hold#{job.id}, running on node {bg.node_id}")
    assert out.endswith(f"cancelled hold#{job.id}\n")
    wait_until(lambda: recorder.of(JobCancelled), 10, "the node's event")
    (event,) = recorder.of(JobCancelled)
    assert event.job.id == job.id and event.node_id == bg.node_id, "emitted where it ran"
    again = migrated("jobs", "cancel", str(job.id))
    assert again.exit_code == 0 and f"job {job.id} was already cancelled" in again.stdout


def test_cancel_without_wait_returns_at_once(
    node: tuple[bgjobs.BgJobs, Recorder], migrated: Invoke
) -> None:
    bg, _ = node
    job = bg.enqueue("hold")
    wait_until(lambda: bg.slots()["default"][0] == 1, 10, "the job to run")
    out = ok(migrated("jobs", "cancel", str(job.id)))
    assert out.startswith(f"cancel requested for hold#{job.id}") and "cancelled hold" not in out
    wait_until(
        lambda: (found := bg.store.get_job(job.id)) is not None and found.state.is_finished,
        10,
        "the node to stop it",
    )


def test_cancelling_a_finished_job_fails_with_its_state(
    database_url: str, migrated: Invoke
) -> None:
    (done,) = process(database_url, ("ok", None))
    result = migrated("jobs", "cancel", str(done.id))
    assert result.exit_code == 1
    assert f"job {done.id} already finished as succeeded" in result.stderr
