"""Bad input on the command line is a usage error (exit 2) that names the problem and the fix,
and nothing is written. The checks are the library's (tests/test_bad_input.py): `bgjobs enqueue`
goes through the same ``build_new_job``, with or without --app."""

from __future__ import annotations

import json
import re

import pytest
from tests.cli.conftest import APP_TARGET, Invoke, as_json, ok

BIG = str(2**70)
MAX_ID = str(2**63 - 1)
PRIORITY_RANGE = "use a whole number from -2147483648 to 2147483647"


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def stderr_line(text: str) -> str:
    """Rich may wrap a long message; compare it as one line."""
    return re.sub(r"\s*\n\s*", " ", text)


@pytest.mark.parametrize("command", ["show", "cancel", "delete", "retry"])
def test_job_ids_beyond_64_bits(migrated: Invoke, command: str) -> None:
    result = migrated("jobs", command, BIG)
    assert result.exit_code == 2, result.output
    assert f"{BIG} is not in the range 1<=x<={MAX_ID}" in result.stderr
    missing = migrated("jobs", command, MAX_ID)
    assert missing.exit_code == 1 and f"no job with id {MAX_ID}" in missing.stderr


def test_list_limit_beyond_64_bits(migrated: Invoke) -> None:
    result = migrated("jobs", "list", "--limit", BIG)
    assert result.exit_code == 2 and f"not in the range 1<=x<={MAX_ID}" in result.stderr


BAD_ENQUEUES = [
    (["--priority", BIG], f"priority {BIG} is out of range: {PRIORITY_RANGE}"),
    (["--priority", str(2**40)], f"priority {2**40} is out of range: {PRIORITY_RANGE}"),
    (["--priority", str(-(2**31) - 1)], f"is out of range: {PRIORITY_RANGE}"),
    (["--in", "99999999999999d"], "'99999999999999d' is too long: a duration is at most"),
    (["--in", "3000000d"], "would run the job after 9999-01-01 00:00:00+00:00, the latest time"),
    (["--at", "0001-01-01T00:00:00+01:00"], "is outside the times bgjobs can store"),
    (["--at", "9999-12-31T00:00:00Z"], "up to (not including) 9999-01-01 00:00:00+00:00"),
    (["--payload", deep(10_000)], "is nested more than 100 levels deep; flatten it"),
    (["--payload", deep(101)], "is nested more than 100 levels deep; flatten it"),
    (["--payload", "NaN"], "payload is nan; JSON has no NaN/Infinity"),
    (["--payload", '{"x": [Infinity]}'], "payload.x[0] is inf; JSON has no NaN/Infinity"),
    (["--payload", "1" * 5000], "integer longer than 4300 digits; pass it as a string"),
    (["--payload", '{"s": "\\udc80"}'], "payload.s is a string with a lone surrogate"),
    (["--queue", "media\n"], "queue name 'media\\n' is invalid: use 1-200 letters"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ENQUEUES)
def test_bad_enqueue_is_a_usage_error(migrated: Invoke, args: list[str], message: str) -> None:
    result = migrated("enqueue", "send_email", *args)
    assert result.exit_code == 2, result.output
    assert message in stderr_line(result.stderr)
    assert "Traceback" not in result.output
    assert as_json(migrated("jobs", "list", "--json")) == []


@pytest.mark.parametrize(
    ("args", "message"), [case for case in BAD_ENQUEUES if case[0][0] != "--queue"]
)
def test_bad_enqueue_with_app_is_the_same_usage_error(
    migrated: Invoke, args: list[str], message: str
) -> None:
    result = migrated("enqueue", "send_email", "--app", APP_TARGET, *args)
    assert result.exit_code == 2, result.output
    assert message in stderr_line(result.stderr)
    assert as_json(migrated("jobs", "list", "--json")) == []


@pytest.mark.parametrize("name", ["send_email\n", "send_\udcffemail"])
def test_job_names_no_worker_can_have(migrated: Invoke, name: str) -> None:
    for extra in ([], ["--app", APP_TARGET]):
        result = migrated("enqueue", name, *extra)
        assert result.exit_code == 2, result.output
        assert f"job name {name!r} is invalid: use 1-200 letters" in stderr_line(result.stderr)
    assert as_json(migrated("jobs", "list", "--json")) == []


def test_enqueue_accepts_the_ends_of_the_ranges(migrated: Invoke) -> None:
    low = as_json(
        migrated("enqueue", "send_email", "--queue", "q", "--priority", str(-(2**31)), "--json")
    )
    high = as_json(
        migrated(
            "enqueue",
            "send_email",
            "--queue",
            "q",
            "--priority",
            str(2**31 - 1),
            "--payload",
            deep(100),
            "--json",
        )
    )
    assert (low["priority"], high["priority"]) == (-(2**31), 2**31 - 1)
    shown = as_json(migrated("jobs", "show", str(high["id"]), "--json"))
    assert shown["payload"] == json.loads(deep(100))


def test_show_wraps_long_payload_lines_instead_of_cutting_them(migrated: Invoke) -> None:
    token = "x" * 150
    words = " ".join(f"w{n}" for n in range(60))
    job = as_json(
        migrated(
            "enqueue",
            "send_email",
            "--queue",
            "q",
            "--payload",
            json.dumps({"t": token, "s": words}),
            "--json",
        )
    )
    shown = ok(migrated("jobs", "show", str(job["id"]), env={"COLUMNS": "40"}))
    assert max(len(line) for line in shown.splitlines()) <= 40
    joined = "".join(shown.split())
    assert token in joined, "the whole long token is shown"
    assert "".join(words.split()) in joined, "every word is shown"


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "list", "--name", "send_\udcffemail"],
        ["jobs", "list", "--queue", "\udcff"],
        ["jobs", "retry", "--all-failed", "--name", "\udcff"],
    ],
)
def test_filters_that_are_not_valid_utf8(migrated: Invoke, args: list[str]) -> None:
    """A byte that is not UTF-8 in argv arrives as a lone surrogate; no stored name has one."""
    result = migrated(*args)
    assert result.exit_code == 2, result.output
    assert "is not valid UTF-8 text" in stderr_line(result.stderr)


def test_prune_older_than_before_any_job_could_finish(migrated: Invoke) -> None:
    """A cutoff before 1970 (where Postgres timestamps end sooner than SQLite integers) means
    every job: the same answer on both stores."""
    ok(migrated("enqueue", "send_email", "--queue", "q"))
    for longest in ("3000000d", "100000w"):
        result = migrated("prune", "--older-than", longest, "--state", "succeeded")
        assert ok(result).startswith("pruned 0 jobs (succeeded) finished more than ")
    assert len(as_json(migrated("jobs", "list", "--json"))) == 1
