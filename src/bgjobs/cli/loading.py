"""Turn a TARGET (``module:attribute`` or ``path/to/file.py:attribute``) into a runtime.

The attribute may be a built runtime (:class:`bgjobs.BgJobs`), a builder
(:class:`bgjobs.BgJobsSpec`) or a zero-argument function returning either, written in the
target's own module. Nothing else is called: not classes, built-ins or functions imported from
elsewhere, so a mistyped TARGET cannot run arbitrary code. What a function returns is checked.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from bgjobs.runtime.app import BgJobs, BgJobsSpec, no_start_while_importing

EXPECTED = (
    "a bgjobs.BgJobs runtime (the result of .build()), a bgjobs.BgJobsSpec builder, "
    "or a zero-argument function defined in that module that returns one"
)


class TargetError(Exception):
    """TARGET names something that is not there or not a runtime (a usage error)."""


class TargetFailed(Exception):
    """The target's own code raised while it was imported or called."""


def load_runtime(
    target: str, *, queues: Sequence[str] | None = None, concurrency: int | None = None
) -> BgJobs:
    """Import TARGET and return its runtime, rebuilt with the overrides if any are given."""
    found = resolve(target)
    if queues is None and concurrency is None:
        return found if isinstance(found, BgJobs) else found.build()
    spec = found.spec if isinstance(found, BgJobs) else found
    if queues is not None:
        spec = only_queues(spec, queues)
    if concurrency is not None:
        spec = with_concurrency(spec, concurrency)
    return spec.build()


def load_object(target: str) -> tuple[ModuleType, object]:
    """The module TARGET names and the attribute it points at."""
    module_part, attribute = split_target(target)
    module = import_target(module_part)
    value: object = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise TargetError(
                f"{module_part!r} has no attribute {attribute!r}{_candidates(module)}"
            )
        value = getattr(value, part)
    return module, value


def resolve(target: str) -> BgJobs | BgJobsSpec:
    with no_start_while_importing(target):
        return _resolve(target)


def _resolve(target: str) -> BgJobs | BgJobsSpec:
    module, value = load_object(target)
    if isinstance(value, BgJobs | BgJobsSpec):
        return value
    if not callable(value):
        raise TargetError(f"{target} is {_describe(value)}; expected {EXPECTED}")
    refusal = _not_a_factory(value, module)
    if refusal is not None:
        raise TargetError(f"{target} is {refusal}, so it was not called; expected {EXPECTED}")
    try:
        inspect.signature(value).bind()
    except TypeError:
        raise TargetError(
            f"{target} is {_describe(value)} that needs arguments; expected {EXPECTED}"
        ) from None
    try:
        result = value()
    except Exception as exc:
        raise TargetFailed(f"calling {target}() failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(result, BgJobs | BgJobsSpec):
        return result
    raise TargetError(f"{target}() returned {_describe(result)}; expected {EXPECTED}")


def _not_a_factory(value: object, module: ModuleType) -> str | None:
    """Why ``value`` must not be called as the app's factory, or None if it may be.

    Only a plain (or method) Python function written in the target's own module is called: a
    TARGET like ``os:fork`` or ``shutil:rmtree`` must never run just because it was named.
    """
    if inspect.isclass(value):
        return f"the class {value.__module__}.{value.__qualname__}"
    if inspect.isbuiltin(value):
        owner = value.__module__ or type(value.__self__).__qualname__
        return f"the built-in function {owner}.{value.__name__}"
    function = value.__func__ if inspect.ismethod(value) else value
    if not inspect.isfunction(function):
        kind = type(value)
        return f"a {kind.__module__}.{kind.__qualname__} object"
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return "an async function (the factory must be a plain def)"
    if inspect.isgeneratorfunction(function):
        return "a generator function (the factory must return, not yield)"
    home = function.__module__
    if home != module.__name__:
        return (
            f"the function {home}.{function.__qualname__}, defined in {home}, not in "
            f"{module.__name__}; use {home}:{function.__qualname__} if it builds your runtime"
        )
    return None


def split_target(target: str) -> tuple[str, str]:
    module_part, sep, attribute = target.strip().rpartition(":")
    if not sep or not module_part or not attribute:
        raise TargetError(
            f"TARGET {target!r} must look like module:attribute (myapp.jobs:bg) "
            "or path/to/file.py:attribute (examples/cli_app.py:bg)"
        )
    return module_part, attribute


def import_target(module_part: str) -> ModuleType:
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        return _import_file(Path(module_part))
    # A console script does not put the working directory on sys.path; `python -m` does.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_part == exc.name or module_part.startswith(exc.name + ".")
        ):
            raise TargetError(
                f"module {module_part!r} not found (looked in {cwd} and sys.path); check the "
                "name, or give a file path such as path/to/app.py:bg"
            ) from None
        raise TargetFailed(f"importing {module_part} failed: {exc}") from exc
    except Exception as exc:
        raise TargetFailed(f"importing {module_part} failed: {type(exc).__name__}: {exc}") from exc


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise TargetError(f"file {str(path)!r} not found (working directory: {os.getcwd()})")
    path = path.resolve()
    name = path.stem if path.stem not in sys.modules else f"bgjobs_target_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{str(path)!r} cannot be imported as Python (expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    # Like `python file.py`: the file's folder is importable, so its sibling modules are too.
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise TargetFailed(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def only_queues(spec: BgJobsSpec, names: Sequence[str]) -> BgJobsSpec:
    """Keep only the named queues, and the scheduled jobs that run on them."""
    lane = spec.scheduled_lane.name
    known = [q.name for q in spec.queues]
    if spec.scheduled_jobs and any(s.queue is None for s in spec.scheduled_jobs):
        known.append(lane)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise TargetError(
            f"--queues: no queue named {', '.join(map(repr, unknown))}; "
            f"this app has: {', '.join(known)}"
        )
    return replace(
        spec,
        queues=tuple(q for q in spec.queues if q.name in names),
        scheduled_jobs=tuple(s for s in spec.scheduled_jobs if (s.queue or lane) in names),
    )


def with_concurrency(spec: BgJobsSpec, limit: int) -> BgJobsSpec:
    """Set max_concurrent_jobs of every queue (the scheduled lane included)."""
    return replace(
        spec,
        queues=tuple(q.with_max_concurrent_jobs(limit) for q in spec.queues),
        scheduled_lane=spec.scheduled_lane.with_max_concurrent_jobs(limit),
    )


def _describe(value: object) -> str:
    kind = type(value).__name__
    if inspect.isfunction(value) or inspect.ismethod(value):
        return "a function"
    if inspect.isclass(value):
        return f"the class {value.__name__}"
    text = repr(value)
    return f"a {kind} ({text[:40]}{'...' if len(text) > 40 else ''})"


def _candidates(module: ModuleType) -> str:
    found = [
        name
        for name, value in vars(module).items()
        if isinstance(value, BgJobs | BgJobsSpec) and not name.startswith("_")
    ]
    return f"; it has these runtimes/builders: {', '.join(found)}" if found else ""
