"""Jobs no live node has a worker for, in one runtime on both backends: a node looks after the
queues it serves; jobs on a queue no live node serves at all just wait."""

from __future__ import annotations

from tests.conftest import Recorder, wait_until

import bgjobs
from bgjobs.adapters.base import Store
from bgjobs.events import JobDiscarded, NoLiveWorker
from bgjobs.job import JobState, NewJob


def test_only_jobs_on_the_nodes_own_queues_are_discarded(store: Store) -> None:
    recorder = Recorder()
    bg = (
        bgjobs.new(store)
        .with_event_listener(recorder)
        .with_heartbeat(0.1, 0.5)
        .with_unknown_worker_timeout(0.4)
        .with_queue(bgjobs.queue("q").with_worker(bgjobs.worker("ok", lambda job: None)))
        .build()
    )
    gone, elsewhere = store.insert_jobs(
        [
            NewJob(queue="q", name="gone", raw_payload="{}", max_attempts=3),
            NewJob(queue="media", name="resize", raw_payload="{}", max_attempts=3),
        ]
    )
    with bg:
        wait_until(lambda: recorder.of(JobDiscarded), 30, "the job on q to be discarded")
    (noticed,) = recorder.of(NoLiveWorker)
    assert (noticed.queue, noticed.name, noticed.waiting) == ("q", "gone", 1)
    assert noticed.offered == "q: ok" and noticed.discard_after.total_seconds() == 0.4
    assert [event.job.id for event in recorder.of(JobDiscarded)] == [gone.id]
    waiting = store.get_job(elsewhere.id)
    assert waiting is not None and waiting.state is JobState.AVAILABLE, "nobody serves media"
