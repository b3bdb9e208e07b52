"""Refuses ``start()``/``run()`` while the CLI is importing the app that calls it.

A module-level ``bg.run()`` would otherwise start processing jobs before ``bgjobs run`` has set
up its view and overrides, and block the import forever.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from bgjobs.errors import RuntimeStateError

_importing = threading.local()


@contextmanager
def no_start_while_importing(target: str) -> Iterator[None]:
    """While the CLI imports ``target``, a ``start()``/``run()`` in it is refused with a hint."""
    _importing.target = target
    try:
        yield
    finally:
        _importing.target = None


def refuse_start_while_importing() -> None:
    target = getattr(_importing, "target", None)
    if target is not None:
        raise RuntimeStateError(
            f"{target} starts its runtime while being imported (bg.run() or bg.start() "
            'at module level); put that under `if __name__ == "__main__":` so '
            "`bgjobs run` can start it"
        )
