"""Helpers for the CLI tests: invoke `bgjobs` in-process on this test's real database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bgjobs.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "cli_app.py"
APP_TARGET = f"{APP}:bg"

Invoke = Callable[..., Result]


def invoke_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="bgjobs")


@pytest.fixture
def invoke(database_url: str) -> Invoke:
    """Run `bgjobs ARGS...` with BGJOBS_DATABASE_URL pointing at this test's database."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return invoke_cli(*args, env={"BGJOBS_DATABASE_URL": database_url, **(env or {})})

    return run


@pytest.fixture
def migrated(invoke: Invoke) -> Invoke:
    """``invoke`` on a database that `bgjobs migrate` has prepared."""
    result = invoke("migrate")
    assert result.exit_code == 0, result.output
    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return result.stdout


def as_json(result: Result) -> Any:
    return json.loads(ok(result))
