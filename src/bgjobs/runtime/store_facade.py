"""The one door between the runtime and its Store: every call passes through here.

Error reporting (and any future instrumentation, such as timings) is written once, in this
wrapper, not in each store and not at each call site; a store operation added to the protocol
is covered without a line here. The stores contain no instrumentation at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from bgjobs.adapters.base import Store
from bgjobs.errors import BgJobsError

ReportFailure = Callable[[str, Exception], None]  # (operation, error)


class _ReportingStore:
    def __init__(self, store: Store, report: ReportFailure) -> None:
        self._store = store
        self._report = report

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if name.startswith("_") or not callable(value):
            return value  # data (backend, display_url) reads through, uncached
        report = self._report

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except BgJobsError:
                # A refusal the store makes on purpose (cancel a running job, schema too old)
                # is an answer for the caller, not a failing store.
                raise
            except Exception as exc:
                report(name, exc)
                raise

        self.__dict__[name] = call  # later calls skip __getattr__
        return call


def reporting(store: Store, report: ReportFailure) -> Store:
    """``store`` with every failing call reported to ``report`` before the error propagates."""
    return cast(Store, _ReportingStore(store, report))
