"""Enqueueing: what is persisted, and what is refused before anything is written."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tests.conftest import Recorder

import bgjobs
from bgjobs.adapters.base import JobFilter, Store
from bgjobs.events import JobEnqueued, NoWorkerForJob


def noop(job: bgjobs.Job) -> None:
    pass


def build(store: Store, recorder: Recorder | None = None) -> bgjobs.BgJobs:
    spec = bgjobs.new(store).with_queue(
        bgjobs.queue("mail")
        .with_worker(bgjobs.worker("send", noop))
        .with_worker(bgjobs.worker("other", noop).with_max_attempts(4))
    )
    if recorder is not None:
        spec = spec.with_event_listener(recorder)
    return spec.build()


def test_enqueue_persists_and_returns_the_job(store: Store) -> None:
    recorder = Recorder()
    bg = build(store, recorder)
    job = bg.enqueue("send", {"to": "ada", "tags": ["a", 1, None, 2.5, True]}, priority=-1)
    assert job.id > 0 and job.queue == "mail" and job.priority == -1
    assert job.max_attempts == 10
    assert job.state is bgjobs.JobState.AVAILABLE
    stored = store.get_job(job.id)
    assert stored is not None
    assert stored.payload == {"to": "ada", "tags": ["a", 1, None, 2.5, True]}
    assert [e.job.id for e in recorder.of(JobEnqueued)] == [job.id]
    assert bg.enqueue("other").max_attempts == 4


def test_delay_and_at(store: Store) -> None:
    bg = build(store)
    delayed = bg.enqueue("send", None, delay=timedelta(minutes=5))
    assert delayed.state is bgjobs.JobState.SCHEDULED
    assert delayed.available_at - delayed.created_at >= timedelta(minutes=4, seconds=59)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert bg.enqueue("send", at=at).available_at == at
    with pytest.raises(bgjobs.ConfigError, match="time zone"):
        bg.enqueue("send", at=datetime(2030, 1, 1))
    with pytest.raises(bgjobs.ConfigError, match="not both"):
        bg.enqueue("send", delay=timedelta(1), at=at)


def test_unknown_worker_is_refused_and_emits_event(store: Store) -> None:
    recorder = Recorder()
    bg = build(store, recorder)
    with pytest.raises(bgjobs.UnknownWorkerError, match=r"'sned'.*known: other, send"):
        bg.enqueue("sned", {})
    [event] = recorder.of(NoWorkerForJob)
    assert event.name == "sned" and event.known == ("other", "send")
    assert store.list_jobs(JobFilter()) == []


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"when": datetime(2020, 1, 1)}, "payload.when is datetime"),
        ({"deep": [1, {"x": {1, 2}}]}, "payload.deep[1].x is set"),
        ({1: "int key"}, "key 1 of type int"),
        ({"n": float("nan")}, "NaN"),
        (object(), "payload is object"),
    ],
)
def test_non_json_payload_is_refused_naming_the_value(
    store: Store, payload: object, where: str
) -> None:
    bg = build(store)
    with pytest.raises(bgjobs.PayloadError) as info:
        bg.enqueue("send", payload)  # type: ignore[arg-type]
    assert where in str(info.value) and "JSON" in str(info.value)
    assert store.list_jobs(JobFilter()) == [], "nothing is written"


def test_enqueue_many_is_all_or_nothing(store: Store) -> None:
    bg = build(store)
    jobs = bg.enqueue_many([("send", {"n": n}) for n in range(100)])
    assert len(jobs) == 100 and len({j.id for j in jobs}) == 100
    with pytest.raises(bgjobs.PayloadError):
        bg.enqueue_many([("send", 1), ("send", {"bad": object()})])
    assert len(store.list_jobs(JobFilter(limit=1000))) == 100


def test_aenqueue(store: Store) -> None:
    bg = build(store)

    async def main() -> bgjobs.Job:
        return await bg.aenqueue("send", {"async": True})

    job = asyncio.run(main())
    stored = store.get_job(job.id)
    assert stored is not None and stored.payload == {"async": True}


def test_cancel_a_waiting_job(store: Store) -> None:
    from bgjobs.events import JobCancelled

    recorder = Recorder()
    bg = build(store, recorder)
    job = bg.enqueue("send", delay=timedelta(hours=1))
    cancelled = bg.cancel(job.id)
    assert cancelled.outcome is bgjobs.CancelOutcome.CANCELLED and cancelled.stopped
    assert cancelled.job is not None and cancelled.job.state is bgjobs.JobState.CANCELLED
    assert [e.job.id for e in recorder.of(JobCancelled)] == [job.id]
    again = bg.cancel(job.id)
    assert again.outcome is bgjobs.CancelOutcome.FINISHED and again.stopped
    assert len(recorder.of(JobCancelled)) == 1, "no event for a job that was already finished"
    assert bg.cancel(999_999) == bgjobs.Cancellation(bgjobs.CancelOutcome.NOT_FOUND, None)
