"""Hooks around an enqueue and around each run of a job, for tracing (``bgjobs.integrations.otel``).

Events tell listeners what happened, after the fact and on whichever thread wrote it. A tracer
needs more: its span must be *current while* the insert or the handler runs, so that spans the
handler opens nest under it, and what the enqueue carries (a W3C trace context) must be stored
with the job so that its run, in any process, can find it. Hence two context managers:

- ``enqueue(jobs)`` wraps the insert of one ``enqueue``/``enqueue_many`` call. Its scope's
  ``meta`` (read after entering) is stored with each job (``Job.meta``); ``inserted(jobs)`` is
  called with the stored jobs. An insert that raises leaves through the context manager.
- ``run(job)`` wraps a job's run on the thread (or asyncio task) that runs its handler; the
  runtime calls ``finished(completion, error)`` once the outcome is decided, inside the scope.
  ``error`` is what the handler raised (None on success and for poison input, whose completion
  carries the error).

A runtime without instrumentation pays one ``is None`` check per enqueue and per run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Protocol

from bgjobs.adapters.base import Completion
from bgjobs.job import Job, NewJob


class EnqueueScope(Protocol):
    @property
    def meta(self) -> Mapping[str, str]:
        """Strings to store with each job of this enqueue (empty: store nothing)."""

    def inserted(self, jobs: Sequence[Job]) -> None:
        """The jobs as stored (a unique key that was taken leaves its job out)."""


class RunScope(Protocol):
    def finished(self, completion: Completion, error: BaseException | None) -> None:
        """How the run ended: its outcome (and error), before it is written."""


class Instrumentation(Protocol):
    def enqueue(self, jobs: Sequence[NewJob]) -> AbstractContextManager[EnqueueScope]: ...

    def run(self, job: Job) -> AbstractContextManager[RunScope]: ...


def combined(parts: Sequence[Instrumentation]) -> Instrumentation | None:
    """One instrumentation doing what all of ``parts`` do (None for none: the fast path)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return _All(tuple(parts))


class _AllEnqueue:
    def __init__(self, scopes: list[EnqueueScope]) -> None:
        self._scopes = scopes
        self.meta: Mapping[str, str] = {k: v for s in scopes for k, v in s.meta.items()}

    def inserted(self, jobs: Sequence[Job]) -> None:
        for scope in self._scopes:
            scope.inserted(jobs)


class _AllRun:
    def __init__(self, scopes: list[RunScope]) -> None:
        self._scopes = scopes

    def finished(self, completion: Completion, error: BaseException | None) -> None:
        for scope in self._scopes:
            scope.finished(completion, error)


class _All:
    """Nested in the order given: the first instrumentation's scope is the outermost."""

    def __init__(self, parts: tuple[Instrumentation, ...]) -> None:
        self._parts = parts

    @contextmanager
    def enqueue(self, jobs: Sequence[NewJob]) -> Iterator[EnqueueScope]:
        with ExitStack() as stack:
            yield _AllEnqueue([stack.enter_context(p.enqueue(jobs)) for p in self._parts])

    @contextmanager
    def run(self, job: Job) -> Iterator[RunScope]:
        with ExitStack() as stack:
            yield _AllRun([stack.enter_context(p.run(job)) for p in self._parts])
