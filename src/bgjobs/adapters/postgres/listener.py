"""Cross-process wake-up for Postgres: LISTEN on the schema's channel, one notification per queue.

Inserts call ``pg_notify(channel, queue)`` in their own transaction, so a wake-up arrives only
after the jobs are visible (and never for a rolled-back insert). Cancel requests for running
jobs arrive the same way on a second channel, one notification per job id. The listener owns one
dedicated autocommit connection; when it drops, it reports "lost", reconnects with backoff,
LISTENs again and reports "restored" (the runtime then polls every queue and looks for cancel
requests, covering what was missed meanwhile).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import Connection, sql

from bgjobs.adapters.base import CancelCallback, EventCallback, WakeCallback

log = logging.getLogger("bgjobs")

_POLL_SECONDS = 0.2  # how often the thread looks at its stop flag while idle
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 2.0


class NotifyListener:
    def __init__(
        self,
        connect: Callable[[], Connection[Any]],
        channel: str,
        on_wake: WakeCallback,
        on_channel: EventCallback,
        *,
        cancels: tuple[str, CancelCallback] | None = None,  # (channel, callback)
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._on_wake = on_wake
        self._on_channel = on_channel
        self._cancels = cancels
        self._stopped = threading.Event()
        self.listening = threading.Event()  # set while LISTEN is active (tests wait on it)
        self._thread = threading.Thread(
            target=self._run, name=f"bgjobs-pg-listen:{channel}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = _BACKOFF_FIRST
        lost = False
        while not self._stopped.is_set():
            try:
                conn = self._connect()
            except Exception as exc:
                if not lost:
                    lost = True
                    self._report("lost", _describe(exc))
                self._stopped.wait(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            try:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                if self._cancels is not None:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._cancels[0])))
                self.listening.set()
                if lost:
                    lost = False
                    self._report("restored", None)
                delay = _BACKOFF_FIRST
                self._listen(conn)
            except Exception as exc:
                if not self._stopped.is_set():
                    lost = True
                    self._report("lost", _describe(exc))
                    self._stopped.wait(delay)
            finally:
                self.listening.clear()
                conn.close()

    def _listen(self, conn: Connection[Any]) -> None:
        while not self._stopped.is_set():
            for notify in conn.notifies(timeout=_POLL_SECONDS):
                try:
                    if self._cancels is not None and notify.channel == self._cancels[0]:
                        self._cancels[1](int(notify.payload) if notify.payload.isdigit() else None)
                    else:
                        self._on_wake(notify.payload or None)
                except Exception:
                    log.exception("bgjobs: wake-up callback failed")

    def _report(self, kind: str, error: str | None) -> None:
        try:
            self._on_channel(kind, error)
        except Exception:
            log.exception("bgjobs: wake-up channel callback failed")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if isinstance(exc, psycopg.Error) else repr(exc)
