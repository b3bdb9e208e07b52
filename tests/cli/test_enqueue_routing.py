"""`bgjobs enqueue NAME` without --app routes by what the live nodes publish: the queue whose
nodes run NAME; a name nobody runs, or one several queues run, is refused unless --queue picks.
Real runtimes run in the test, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import Result
from tests.cli.conftest import Invoke, as_json, ok

import bgjobs


def noop(job: bgjobs.Job) -> None:
    pass


@pytest.fixture
def live_nodes(database_url: str, migrated: Invoke) -> Iterator[None]:
    """Two running nodes: mail on "default" and images on "media"; images also on "thumbs"."""
    first = (
        bgjobs.new(database_url)
        .with_queue(bgjobs.queue("default").with_worker(bgjobs.worker("send_email", noop)))
        .with_queue(bgjobs.queue("media").with_worker(bgjobs.worker("resize_image", noop)))
        .build()
    )
    second = (
        bgjobs.new(database_url)
        .with_queue(bgjobs.queue("thumbs").with_worker(bgjobs.worker("resize_image", noop)))
        .build()
    )
    with first, second:
        yield
    for bg in (first, second):
        bg.store.close()


def refused(result: Result) -> str:
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}"
    assert as_list(result.stdout) == []
    return result.stderr


def as_list(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_enqueue_routes_to_the_queue_whose_live_nodes_run_the_name(
    live_nodes: None, migrated: Invoke
) -> None:
    job = as_json(migrated("enqueue", "send_email", "--payload", '{"to": "ada"}', "--json"))
    assert (job["queue"], job["name"], job["max_attempts"]) == ("default", "send_email", 10)
    picked = ok(migrated("enqueue", "resize_image", "--queue", "thumbs"))
    assert "on queue thumbs" in picked


def test_enqueue_refuses_a_name_no_live_node_runs_naming_what_they_run(
    live_nodes: None, migrated: Invoke
) -> None:
    error = refused(migrated("enqueue", "send_emial"))
    assert "no live node has a worker named 'send_emial'" in error
    assert "live nodes run: default: send_email; media: resize_image; thumbs: resize_image" in error
    assert "--queue" in error
    assert as_json(migrated("jobs", "list", "--json")) == [], "nothing was written"
    # Named explicitly it is enqueued, and shows as waiting for a worker.
    waiting = as_json(migrated("enqueue", "send_emial", "--queue", "default", "--json"))
    (listed,) = as_json(migrated("jobs", "list", "--json"))
    assert listed["id"] == waiting["id"] and listed["waiting_for_worker"] is True
    assert "waiting for a worker" in ok(migrated("jobs", "list", env={"COLUMNS": "120"}))
    status = ok(migrated("status"))
    assert "Waiting for a worker" in status and "send_emial" in status


def test_enqueue_refuses_a_name_several_queues_run_unless_queue_picks_one(
    live_nodes: None, migrated: Invoke
) -> None:
    error = refused(migrated("enqueue", "resize_image"))
    assert "'resize_image' runs on several queues: media, thumbs; pick one with --queue" in error
    job = as_json(migrated("enqueue", "resize_image", "--queue", "media", "--json"))
    assert job["queue"] == "media"
    (listed,) = as_json(migrated("jobs", "list", "--json"))
    assert listed["waiting_for_worker"] is False


def test_enqueue_on_a_queue_that_does_not_run_the_name_warns(
    live_nodes: None, migrated: Invoke
) -> None:
    result = migrated("enqueue", "send_email", "--queue", "media")
    assert "on queue media" in ok(result)
    assert "warning: no live node runs send_email on queue media (it runs on default)" in (
        result.stderr
    )


@pytest.mark.parametrize("queue", ["bad queue", "media\n", ""])
def test_enqueue_refuses_queue_names_the_builder_refuses(
    live_nodes: None, migrated: Invoke, queue: str
) -> None:
    error = refused(migrated("enqueue", "send_email", "--queue", queue))
    assert f"queue name {queue!r} is invalid: use 1-200 letters, digits or _ . : - /" in error


def test_enqueue_without_live_nodes_says_none_runs(migrated: Invoke) -> None:
    error = refused(migrated("enqueue", "send_email"))
    assert "no live node has a worker named 'send_email'; live nodes run: nothing" in error
