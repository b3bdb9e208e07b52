"""`status`, `enqueue`, `jobs ...`, `migrate` and `prune` against real SQLite and Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.conftest import APP_TARGET, Invoke, as_json, invoke_cli, ok
from tests.cli.runtime_helpers import build, process

from bgjobs.adapters.base import SCHEMA_VERSION


def _make_empty_database(backend: str, database_url: str) -> None:
    if backend == "sqlite":
        Path(database_url.removeprefix("sqlite:///")).touch()


def test_commands_refuse_an_unmigrated_database(
    backend: str, database_url: str, invoke: Invoke
) -> None:
    _make_empty_database(backend, database_url)
    result = invoke("status")
    assert result.exit_code == 1
    assert "bgjobs migrate" in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_migrate_reports_versions(backend: str, database_url: str, invoke: Invoke) -> None:
    _make_empty_database(backend, database_url)
    status = ok(invoke("migrate", "--status"))
    assert f"schema version 0, this bgjobs needs {SCHEMA_VERSION}" in status
    assert "bgjobs migrate" in status
    assert f"schema 0 -> {SCHEMA_VERSION}" in ok(invoke("migrate"))
    assert f"already at version {SCHEMA_VERSION}" in ok(invoke("migrate"))
    assert f"schema version {SCHEMA_VERSION} (current)" in ok(invoke("migrate", "--status"))


def test_enqueue_list_and_show(migrated: Invoke) -> None:
    first = as_json(
        migrated("enqueue", "send_email", "--payload", '{"to": "ada@example.com"}', "--json")
    )
    assert first["queue"] == "default" and first["max_attempts"] == 10
    assert first["payload"] == {"to": "ada@example.com"}
    line = ok(
        migrated(
            "enqueue",
            "resize_image",
            "--queue",
            "media",
            "--in",
            "5m",
            "--priority",
            "-1",
            "--max-attempts",
            "3",
        )
    )
    assert line.startswith("enqueued resize_image#") and "on queue media, runs in 5m" in line
    ok(migrated("enqueue", "send_email", "--at", "2099-01-01T09:00:00+01:00"))

    listed = as_json(migrated("jobs", "list", "--json"))
    assert [job["name"] for job in listed] == ["send_email", "resize_image", "send_email"]
    assert [job["state"] for job in listed] == ["scheduled", "scheduled", "available"]
    assert listed[0]["available_at"].startswith("2099-01-01T08:00:00")
    media = listed[1]
    assert (media["priority"], media["max_attempts"]) == (-1, 3)

    assert [
        j["id"] for j in as_json(migrated("jobs", "list", "--state", "available", "--json"))
    ] == [first["id"]]
    assert len(as_json(migrated("jobs", "list", "--queue", "media", "--json"))) == 1
    assert len(as_json(migrated("jobs", "list", "--name", "send_email", "--json"))) == 2
    assert len(as_json(migrated("jobs", "list", "--limit", "1", "--json"))) == 1

    table = ok(migrated("jobs", "list"))
    assert "resize_image" in table and "scheduled" in table and "available" in table
    shown = ok(migrated("jobs", "show", str(first["id"])))
    assert '"to": "ada@example.com"' in shown and "attempt" in shown and "0 of 10" in shown
    assert as_json(migrated("jobs", "show", str(first["id"]), "--json"))["id"] == first["id"]
    missing = migrated("jobs", "show", "999999")
    assert missing.exit_code == 1 and "no job with id 999999" in missing.stderr


def test_enqueue_rejects_bad_input(migrated: Invoke) -> None:
    bad_json = migrated("enqueue", "send_email", "--payload", "{to: 1}")
    assert bad_json.exit_code == 2 and "is not valid JSON" in bad_json.stderr
    both = migrated("enqueue", "send_email", "--in", "5m", "--at", "2099-01-01T00:00:00Z")
    assert both.exit_code == 2 and "either --in or --at" in both.stderr
    naive = migrated("enqueue", "send_email", "--at", "2099-01-01T00:00:00")
    assert naive.exit_code == 2 and "no time zone" in naive.stderr
    duration = migrated("enqueue", "send_email", "--in", "5 parsecs")
    assert duration.exit_code == 2 and "cannot parse duration" in duration.stderr
    assert as_json(migrated("jobs", "list", "--json")) == []


def test_enqueue_with_app_routes_by_worker(migrated: Invoke) -> None:
    job = as_json(migrated("enqueue", "resize_image", "--app", APP_TARGET, "--json"))
    assert (job["queue"], job["max_attempts"]) == ("media", 2)
    unknown = migrated("enqueue", "nope", "--app", APP_TARGET)
    assert unknown.exit_code == 1
    assert "no worker named 'nope'; known: cleanup, resize_image, send_email" in unknown.stderr
    clash = migrated("enqueue", "resize_image", "--app", APP_TARGET, "--queue", "default")
    assert clash.exit_code == 2 and "--queue cannot be combined with --app" in clash.stderr


def test_failed_jobs_show_retry(database_url: str, migrated: Invoke) -> None:
    failed, succeeded = process(database_url, ("boom", {"n": 1}), ("ok", None))
    assert failed.state.value == "failed"

    listed = as_json(migrated("jobs", "list", "--state", "failed", "--json"))
    assert [job["id"] for job in listed] == [failed.id]
    assert listed[0]["errors"][0]["type"] == "ValueError"
    assert "ValueError: boom" in ok(migrated("jobs", "list", "--state", "failed"))

    shown = ok(migrated("jobs", "show", str(failed.id)))
    assert "errors (1)" in shown and "ValueError" in shown and "boom {'n': 1}" in shown
    assert "Traceback (most recent call last)" in shown  # the handler's, from the history

    refused = migrated("jobs", "retry", str(succeeded.id))
    assert refused.exit_code == 1
    assert f"job {succeeded.id} is succeeded; only failed" in refused.stderr
    assert ok(migrated("jobs", "retry", str(failed.id))) == f"retried 1 job: {failed.id}\n"
    again = as_json(migrated("jobs", "show", str(failed.id), "--json"))
    assert (again["state"], again["attempt"]) == ("available", 0)

    usage = migrated("jobs", "retry")
    assert usage.exit_code == 2 and "give job IDs or --all-failed" in usage.stderr


def test_retry_all_failed_by_name(database_url: str, migrated: Invoke) -> None:
    process(database_url, ("boom", 1), ("boom", 2), ("ok", None))
    assert ok(migrated("jobs", "retry", "--all-failed", "--name", "other")) == "retried 0 jobs\n"
    assert ok(migrated("jobs", "retry", "--all-failed")).startswith("retried 2 jobs: ")
    assert as_json(migrated("jobs", "list", "--state", "failed", "--json")) == []


def test_cancel_and_delete(migrated: Invoke) -> None:
    job = as_json(migrated("enqueue", "send_email", "--in", "1h", "--json"))
    ident = str(job["id"])
    assert ok(migrated("jobs", "cancel", ident)) == f"cancelled send_email#{ident}\n"
    assert as_json(migrated("jobs", "show", ident, "--json"))["state"] == "cancelled"
    assert "already cancelled" in ok(migrated("jobs", "cancel", ident))
    assert ok(migrated("jobs", "delete", ident)) == f"deleted job {ident}\n"
    for command in ("cancel", "delete"):
        gone = migrated("jobs", command, ident)
        assert gone.exit_code == 1 and f"no job with id {ident}" in gone.stderr


def test_prune_keeps_failures_by_default(database_url: str, migrated: Invoke) -> None:
    process(database_url, ("ok", 1), ("ok", 2), ("boom", 3))
    assert ok(migrated("prune", "--older-than", "7d")).startswith("pruned 0 jobs")
    line = ok(migrated("prune", "--older-than", "0s"))
    assert line == "pruned 2 jobs (succeeded, cancelled) finished more than 0s ago\n"
    assert len(as_json(migrated("jobs", "list", "--json"))) == 1
    assert ok(migrated("prune", "--older-than", "0s", "--state", "failed")).startswith(
        "pruned 1 job "
    )
    wrong = migrated("prune", "--older-than", "1d", "--state", "running")
    assert wrong.exit_code == 2 and "'running' not allowed" in wrong.stderr


def test_status_shows_queues_schedules_and_nodes(database_url: str, migrated: Invoke) -> None:
    process(database_url, ("ok", 1), ("boom", 2))
    ok(migrated("enqueue", "ok", "--in", "1h"))
    ok(migrated("schedules", APP_TARGET))  # registers nothing: the app is not started
    bg = build(database_url)
    bg.start()
    try:
        data = as_json(migrated("status", "--json"))
        table = ok(migrated("status"))
    finally:
        bg.stop()
        bg.store.close()
    (default,) = data["queues"]
    assert default["queue"] == "default"
    assert (default["scheduled"], default["failed"]) == (1, 1)
    assert (default["succeeded_recent"], default["failed_recent"]) == (1, 1)
    assert [node["id"] for node in data["nodes"]] == [bg.node_id]
    assert "default" in table and bg.node_id in table


def test_database_errors_are_one_line(tmp_path: Path) -> None:
    missing = invoke_cli("status", env={"BGJOBS_DATABASE_URL": ""})
    assert missing.exit_code == 2 and "pass --database URL or set BGJOBS_DATABASE_URL" in (
        missing.stderr
    )
    url = invoke_cli("status", "--database", "mysql://localhost/x")
    assert url.exit_code == 1
    assert url.stderr.startswith("error: cannot tell which database 'mysql://localhost/x' is")
    no_file = invoke_cli("jobs", "list", "--database", f"sqlite:///{tmp_path}/typo.db")
    assert no_file.exit_code == 1 and "no database at" in no_file.stderr
    assert not (tmp_path / "typo.db").exists()
    down = invoke_cli("status", "--database", "postgresql://nobody@127.0.0.1:9/nothing")
    assert down.exit_code == 1
    assert len(down.stderr.strip().splitlines()) == 1 and "Traceback" not in down.output


def test_debug_lets_the_traceback_through() -> None:
    result = invoke_cli("--debug", "status", "--database", "mysql://localhost/x")
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "DatabaseURLError"


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["status"],
        ["enqueue"],
        ["migrate"],
        ["prune"],
        ["schedules"],
        ["cron"],
        ["jobs"],
        ["jobs", "list"],
        ["jobs", "show"],
        ["jobs", "retry"],
        ["jobs", "cancel"],
        ["jobs", "delete"],
        [],
    ],
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    text = ok(invoke_cli(*command, "--help"))
    assert "Example" in text
