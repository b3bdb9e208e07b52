"""TARGET loading: module:attribute and file.py:attribute, runtimes, builders, factories."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.conftest import APP, APP_TARGET, invoke_cli

import bgjobs
from bgjobs.cli.loading import TargetError, TargetFailed, load_runtime

APP_SOURCE = """
import bgjobs

def handler(job):
    pass

def spec():
    return (
        bgjobs.new(bgjobs.sqlite({db!r}))
        .with_queue(bgjobs.queue("default").with_worker(bgjobs.worker("a", handler)))
        .with_queue(bgjobs.queue("media").with_max_concurrent_jobs(3)
                    .with_worker(bgjobs.worker("b", handler)))
        .with_scheduled_job(bgjobs.scheduled_job(bgjobs.worker("tick", handler),
                                                 bgjobs.every(minutes=1)))
    )

builder = spec()
bg = builder.build()
text = "hello"

def needs_args(x):
    return spec()

def returns_text():
    return "nope"

def raises():
    raise RuntimeError("factory exploded")

class Holder:
    bg = bg
"""


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module `loadme_app` importable from the working directory."""
    name = f"loadme_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(APP_SOURCE.format(db=str(tmp_path / "jobs.db")))
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize("attribute", ["bg", "builder", "spec", "Holder.bg"])
def test_module_targets(app_module: str, attribute: str) -> None:
    bg = load_runtime(f"{app_module}:{attribute}")
    assert isinstance(bg, bgjobs.BgJobs)
    assert bg.job_names == ("a", "b", "tick")


def test_file_targets(tmp_path: Path) -> None:
    path = tmp_path / "some_file_app.py"
    path.write_text(APP_SOURCE.format(db=str(tmp_path / "jobs.db")))
    assert load_runtime(f"{path}:spec").job_names == ("a", "b", "tick")
    assert load_runtime(f"{APP}:spec").job_names == ("cleanup", "resize_image", "send_email")


def test_overrides_rebuild_the_spec(app_module: str) -> None:
    bg = load_runtime(f"{app_module}:bg", queues=["media", "scheduled"], concurrency=7)
    assert [q.name for q in bg.queues] == ["media", "scheduled"]
    assert {q.max_concurrent_jobs for q in bg.queues} == {7}
    assert bg.job_names == ("b", "tick")
    only_default = load_runtime(f"{app_module}:builder", queues=["default"])
    assert [q.name for q in only_default.queues] == ["default"]
    assert only_default.queues[0].max_concurrent_jobs == 10
    with pytest.raises(
        TargetError,
        match=r"no queue named 'nope'; this app has: default, "
        r"media, scheduled",
    ):
        load_runtime(f"{app_module}:bg", queues=["nope"])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:bg", "module 'no_such_module_xyz' not found"),
        (
            "{app}:missing",
            "has no attribute 'missing'; it has these runtimes/builders: builder, bg",
        ),
        ("{app}:text", "is a str ('hello'); expected a bgjobs.BgJobs runtime"),
        ("{app}:needs_args", "is a function that needs arguments; expected"),
        ("{app}:returns_text", "returned a str ('nope'); expected"),
        ("no-colon", "must look like module:attribute"),
        ("missing/file.py:bg", "file 'missing/file.py' not found"),
    ],
)
def test_bad_targets(app_module: str, target: str, message: str) -> None:
    with pytest.raises(TargetError) as caught:
        load_runtime(target.format(app=app_module))
    assert message in str(caught.value)


def test_target_code_that_raises(app_module: str, tmp_path: Path) -> None:
    with pytest.raises(
        TargetFailed, match=r"calling .*raises\(\) failed: RuntimeError: factory exploded"
    ):
        load_runtime(f"{app_module}:raises")
    broken = tmp_path / "broken_app.py"
    broken.write_text("import not_installed_dependency_xyz\n")
    with pytest.raises(TargetFailed, match="No module named 'not_installed_dependency_xyz'"):
        load_runtime(f"{broken}:bg")


def test_cli_reports_target_errors_in_one_line(tmp_path: Path) -> None:
    bad = invoke_cli("run", "no_such_module_xyz:bg")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: module 'no_such_module_xyz' not found")
    assert len(bad.stderr.strip().splitlines()) == 1
    wrong = invoke_cli("schedules", f"{APP}:DATABASE")
    assert wrong.exit_code == 2 and "is a str ('sqlite:///" in wrong.stderr
    broken = tmp_path / "broken_app.py"
    broken.write_text("1 / 0\n")
    failed = invoke_cli("run", f"{broken}:bg", "--no-live")
    assert failed.exit_code == 1
    assert "ZeroDivisionError: division by zero" in failed.stderr
    assert invoke_cli("run", APP_TARGET, "--live", "--json").exit_code == 2


FOREIGN_SOURCE = """
import collections
import functools
import time

from {helper} import touch, make_spec

class Widget:
    def __init__(self):
        touch("Widget")

async def async_factory():
    return None

def gen_factory():
    yield None

partial_factory = functools.partial(touch, "partial")
now = time.time
odict = collections.OrderedDict
"""

HELPER_SOURCE = """
import bgjobs

def touch(what="touch"):
    with open({marker!r}, "a") as f:
        f.write(what + "\\n")

def make_spec():
    touch("make_spec")
    return bgjobs.new(bgjobs.sqlite({db!r})).with_queue(
        bgjobs.queue("default").with_worker(bgjobs.worker("a", print)))
"""


@pytest.fixture
def foreign_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A module whose attributes are callables it did not define (and one class)."""
    suffix = tmp_path.name.replace("-", "_")
    name, helper = f"foreign_{suffix}", f"helper_{suffix}"
    marker = tmp_path / "called.txt"
    (tmp_path / f"{helper}.py").write_text(
        HELPER_SOURCE.format(marker=str(marker), db=str(tmp_path / "jobs.db"))
    )
    (tmp_path / f"{name}.py").write_text(FOREIGN_SOURCE.format(helper=helper))
    monkeypatch.chdir(tmp_path)
    yield name, marker
    sys.modules.pop(name, None)
    sys.modules.pop(helper, None)


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("now", "is the built-in function time.time"),
        ("odict", "is the class collections.OrderedDict"),
        ("Widget", "is the class foreign_"),
        ("touch", "is the function helper_"),
        ("make_spec", "is the function helper_"),
        ("partial_factory", "is a functools.partial"),
        ("async_factory", "is an async function"),
        ("gen_factory", "is a generator function"),
    ],
)
def test_foreign_callables_are_refused_without_being_called(
    foreign_app: tuple[str, Path], attribute: str, message: str
) -> None:
    module, marker = foreign_app
    with pytest.raises(TargetError) as caught:
        load_runtime(f"{module}:{attribute}")
    assert message in str(caught.value)
    assert "not called" in str(caught.value) and "expected" in str(caught.value)
    assert not marker.exists(), f"{attribute} was called"


def test_function_defined_elsewhere_is_named_where_it_lives(
    foreign_app: tuple[str, Path],
) -> None:
    module, marker = foreign_app
    with pytest.raises(TargetError, match=r"defined in helper_\w+, not in foreign_\w+; use "):
        load_runtime(f"{module}:make_spec")
    helper = module.replace("foreign_", "helper_")
    assert load_runtime(f"{helper}:make_spec").job_names == ("a",)
    assert marker.read_text() == "make_spec\n"


def test_os_fork_is_refused_without_forking() -> None:
    """Run in a child process: should the check fail, only that child forks."""
    result = subprocess.run(
        [sys.executable, "-m", "bgjobs.cli.main", "run", "os:fork", "--no-live"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: os:fork is the built-in function posix.fork")
    assert result.stderr.count("error:") == 1, "one process, one error: it did not fork"
