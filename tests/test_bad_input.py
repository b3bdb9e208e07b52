"""Bad input through the library API: each is refused up front with an error that names the
problem and the fix, the same on SQLite and Postgres, and nothing is written.

The CLI's side of the same checks is in tests/cli/test_usage_errors.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import bgjobs
from bgjobs.adapters.base import JobFilter, Store
from bgjobs.job_requests import (
    EARLIEST_RUN_AT,
    LATEST_RUN_AT,
    MAX_PRIORITY,
    MIN_PRIORITY,
    JobRequest,
    build_new_job,
)
from bgjobs.payload import MAX_INT_DIGITS, MAX_PAYLOAD_DEPTH


def noop(job: bgjobs.Job) -> None:
    pass


def build(store: Store) -> bgjobs.BgJobs:
    return (
        bgjobs.new(store).with_queue(bgjobs.queue("mail").with_worker(bgjobs.worker("send", noop)))
    ).build()


def nested(depth: int) -> Any:
    """A payload ``depth`` containers deep: [[[...]]]."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def refused(store: Store, error: type[Exception], match: str, **enqueue: Any) -> None:
    bg = build(store)
    payload = enqueue.pop("payload", None)
    with pytest.raises(error, match=match):
        bg.enqueue("send", payload, **enqueue)
    with pytest.raises(error, match=match):
        bg.enqueue_many([JobRequest("send", payload, **enqueue)])
    assert store.list_jobs(JobFilter()) == [], "nothing is written"


# payloads --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"s": "ok \udc80"}, r"payload\.s is a string with a lone surrogate '\\udc80'"),
        ({"\ud800k": 1}, r"payload has key '\\ud800k' with a lone surrogate '\\ud800'"),
        ([1, ["x", "\udfff"]], r"payload\[1\]\[1\] is a string with a lone surrogate"),
    ],
)
def test_lone_surrogates_in_payload_strings(store: Store, payload: Any, where: str) -> None:
    refused(store, bgjobs.PayloadError, f"{where}.*UTF-8", payload=payload)


def test_integer_longer_than_the_int_to_text_limit(store: Store) -> None:
    refused(
        store,
        bgjobs.PayloadError,
        rf"payload\.n\[0\] is an integer longer than {MAX_INT_DIGITS} digits; pass it as a string",
        payload={"n": [10**4999]},
    )
    longest = -(10**MAX_INT_DIGITS - 1)
    job = build(store).enqueue("send", {"n": longest})
    stored = store.get_job(job.id)
    assert stored is not None and stored.payload == {"n": longest}


def test_deeply_nested_payload(store: Store) -> None:
    refused(
        store,
        bgjobs.PayloadError,
        rf"payload is nested more than {MAX_PAYLOAD_DEPTH} levels deep.*flatten",
        payload={"a": nested(MAX_PAYLOAD_DEPTH)},
    )
    refused(store, bgjobs.PayloadError, "nested more than", payload=nested(100_000))
    job = build(store).enqueue("send", nested(MAX_PAYLOAD_DEPTH))
    stored = store.get_job(job.id)
    assert stored is not None and stored.payload == nested(MAX_PAYLOAD_DEPTH)


# priority --------------------------------------------------------------------------------------
@pytest.mark.parametrize("priority", [2**40, 2**70, MAX_PRIORITY + 1, MIN_PRIORITY - 1, -(2**70)])
def test_priority_out_of_range_is_the_same_error_on_both_backends(
    store: Store, priority: int
) -> None:
    refused(
        store,
        bgjobs.ConfigError,
        rf"priority {priority} is out of range: use a whole number from "
        rf"{MIN_PRIORITY} to {MAX_PRIORITY}",
        priority=priority,
    )


def test_priority_range_ends_are_stored_exactly(store: Store) -> None:
    bg = build(store)
    for priority in (MIN_PRIORITY, MAX_PRIORITY):
        stored = store.get_job(bg.enqueue("send", priority=priority).id)
        assert stored is not None and stored.priority == priority


@pytest.mark.parametrize("priority", [True, False, 1.0, "1"])
def test_priority_must_be_an_int_not_a_bool(store: Store, priority: Any) -> None:
    refused(
        store,
        bgjobs.ConfigError,
        rf"priority must be a whole number \(int\), got {priority!r}",
        priority=priority,
    )


# delay and at ----------------------------------------------------------------------------------
@pytest.mark.parametrize("days", [999_999_999, 365 * 9000])
def test_delay_past_the_latest_run_time(store: Store, days: int) -> None:
    refused(
        store,
        bgjobs.ConfigError,
        r"delay=\d+ days, 0:00:00 would run the job after 9999-01-01 00:00:00\+00:00, the "
        r"latest time bgjobs can store; give a shorter delay \(under \d+ days\)",
        delay=timedelta(days=days),
    )


def test_longest_delay_is_stored(store: Store) -> None:
    longest = LATEST_RUN_AT - datetime.now(UTC) - timedelta(days=1)
    job = build(store).enqueue("send", delay=longest)
    stored = store.get_job(job.id)
    assert stored is not None and stored.available_at.year == 9998


@pytest.mark.parametrize("delay", [30, 1.5, "5m"])
def test_delay_must_be_a_timedelta(store: Store, delay: Any) -> None:
    refused(
        store,
        bgjobs.ConfigError,
        rf"delay must be a datetime\.timedelta, got {delay!r}.*timedelta\(seconds=30\)",
        delay=delay,
    )


@pytest.mark.parametrize(
    "at",
    [
        datetime.max.replace(tzinfo=UTC),
        LATEST_RUN_AT,
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # before year 1 in UTC
        datetime(1, 1, 1, tzinfo=UTC),
        EARLIEST_RUN_AT - timedelta(microseconds=1),
    ],
)
def test_at_outside_the_storable_range(store: Store, at: datetime) -> None:
    refused(
        store,
        bgjobs.ConfigError,
        r"at=.* is outside the times bgjobs can store: give a time from "
        r"1970-01-01 00:00:00\+00:00 up to \(not including\) 9999-01-01 00:00:00\+00:00",
        at=at,
    )


def test_at_must_be_a_datetime(store: Store) -> None:
    refused(store, bgjobs.ConfigError, r"at must be a datetime\.datetime", at="2030-01-01")


def test_run_time_range_ends_are_stored_exactly(store: Store) -> None:
    bg = build(store)
    for at in (EARLIEST_RUN_AT, LATEST_RUN_AT - timedelta(microseconds=1)):
        stored = store.get_job(bg.enqueue("send", at=at).id)
        assert stored is not None and stored.available_at == at


# names -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["send\n", "send\r\n", "\nsend", "se\udc80nd", "", "a b"])
def test_builder_refuses_bad_worker_and_queue_names(name: str) -> None:
    message = rf"name {name!r} is invalid: use 1-200 letters".replace("\\", "\\\\")
    with pytest.raises(bgjobs.ConfigError, match=message):
        bgjobs.new(bgjobs.sqlite(":memory:")).with_queue(
            bgjobs.queue("mail").with_worker(bgjobs.worker(name, noop))
        ).build()
    with pytest.raises(bgjobs.ConfigError, match=message):
        bgjobs.new(bgjobs.sqlite(":memory:")).with_queue(
            bgjobs.queue(name).with_worker(bgjobs.worker("send", noop))
        ).build()


@pytest.mark.parametrize("name", ["send\n", "se\udc80nd", "x" * 201])
def test_enqueue_refuses_names_no_worker_can_have(name: str) -> None:
    with pytest.raises(bgjobs.ConfigError, match=r"job name .* is invalid: use 1-200 letters"):
        build_new_job(JobRequest(name), queue="mail", max_attempts=1)
    with pytest.raises(bgjobs.ConfigError, match=r"queue name .* is invalid: use 1-200 letters"):
        build_new_job(JobRequest("send"), queue=name, max_attempts=1)


def test_enqueue_of_an_unknown_bad_name_writes_nothing(store: Store) -> None:
    bg = build(store)
    for name in ("send\n", "se\udc80nd"):
        with pytest.raises(bgjobs.UnknownWorkerError, match="no worker named"):
            bg.enqueue(name)
    assert store.list_jobs(JobFilter()) == []


@pytest.mark.parametrize("attempts", [0, 2**31, 2**70])
def test_max_attempts_must_fit_the_stores(attempts: int) -> None:
    with pytest.raises(bgjobs.ConfigError, match=r"max_attempts .* from 1 to 2147483647"):
        build_new_job(JobRequest("send"), queue="mail", max_attempts=attempts)
    with pytest.raises(bgjobs.ConfigError, match=r"max_attempts must be a whole number \(int\)"):
        build_new_job(JobRequest("send"), queue="mail", max_attempts=True)
